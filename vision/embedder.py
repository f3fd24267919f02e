"""The embedder interface: images or texts in, L2-normalised float32 vectors out (N, D)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from vision.manifest import ModelManifest
from vision.model_store import ModelStore

Backend = Literal["onnx", "onnx-int8", "torch"]
BACKENDS: tuple[Backend, ...] = ("onnx", "onnx-int8", "torch")


class Embedder(Protocol):
    """What every backend offers; vectors of images and texts share one space."""

    manifest: ModelManifest

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed (N, 3, H, W) float32 pixels to (N, D) unit vectors."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Decoded RGB images to (N, D) unit vectors."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts to (N, D) unit vectors in the image space."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit rows in float32, so that inner product is cosine; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def open_embedder(
    model: str,
    backend: Backend = "onnx",
    store: ModelStore | None = None,
    threads: int | None = None,
) -> Embedder:
    """Open `model` with `backend`. The ONNX backends never import torch."""
    store = store or ModelStore()
    directory, manifest = store.resolve(model)
    if backend == "torch":
        from vision.torch_embedder import TorchEmbedder

        return TorchEmbedder.from_manifest(manifest, directory)
    from vision.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(directory, manifest, quantized=backend == "onnx-int8", threads=threads)

"""The `torch` backend: open_clip itself, with its own transform and tokenizer. The reference for parity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vision.embedder import l2_normalise
from vision.manifest import ModelManifest
from vision.open_clip_loader import load_open_clip


class TorchEmbedder:
    """open_clip end to end: the behaviour the ONNX backends must reproduce."""

    def __init__(self, model: torch.nn.Module, transform: object, tokenizer: object, manifest: ModelManifest) -> None:
        self.model = model
        self.transform = transform
        self.tokenizer = tokenizer
        self.manifest = manifest

    @classmethod
    def from_manifest(cls, manifest: ModelManifest, directory: Path | None = None) -> TorchEmbedder:
        source = manifest.source
        weights = source.get("path") if source.get("kind") == "checkpoint" else None
        spec = replace(manifest, source=dict(source["was"])) if weights and "was" in source else manifest
        model, transform, tokenizer = load_open_clip(spec, weights)
        return cls(model, transform, tokenizer, manifest)

    @property
    def dim(self) -> int:
        return self.manifest.embed_dim

    @torch.inference_mode()
    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return l2_normalise(self.model.encode_image(torch.from_numpy(np.asarray(pixels, np.float32))).numpy())

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        batch = torch.stack([self.transform(image) for image in images])
        return l2_normalise(self.model.encode_image(batch).numpy())

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return l2_normalise(self.model.encode_text(self.tokenizer(list(texts))).numpy())

"""The serving backends `onnx` and `onnx-int8`: onnxruntime sessions, NumPy preprocessing, no torch."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from vision.embedder import l2_normalise
from vision.errors import ModelUnavailable
from vision.hf_tokenizer import HfTokenizer
from vision.manifest import IMAGE_INT8_ONNX, IMAGE_ONNX, TEXT_INT8_ONNX, TEXT_ONNX, ModelManifest
from vision.preprocess import preprocess_batch
from vision.tokenizer import ClipTokenizer

MAX_BATCH = 32


def default_threads() -> int:
    """Inference threads: every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class OnnxEmbedder:
    """Image and text towers of one exported model. Sessions open lazily; calls are thread-safe."""

    def __init__(
        self, directory: Path, manifest: ModelManifest, quantized: bool = False, threads: int | None = None
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.quantized = quantized
        self.threads = threads or default_threads()
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._tokenizer: Callable[[Sequence[str]], np.ndarray] | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.manifest.embed_dim

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        session = self._session(IMAGE_INT8_ONNX if self.quantized else IMAGE_ONNX)
        outputs = [
            session.run(None, {"pixel_values": np.ascontiguousarray(pixels[i : i + MAX_BATCH], dtype=np.float32)})[0]
            for i in range(0, len(pixels), MAX_BATCH)
        ]
        return l2_normalise(np.concatenate(outputs) if outputs else np.zeros((0, self.dim), np.float32))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_pixels(preprocess_batch(images, self.manifest.preprocess))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.tokenize(texts)
        session = self._session(TEXT_INT8_ONNX if self.quantized else TEXT_ONNX)
        outputs = [session.run(None, {"input_ids": ids[i : i + MAX_BATCH]})[0] for i in range(0, len(ids), MAX_BATCH)]
        return l2_normalise(np.concatenate(outputs) if outputs else np.zeros((0, self.dim), np.float32))

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._load_tokenizer()
        return self._tokenizer(list(texts))

    def _load_tokenizer(self) -> Callable[[Sequence[str]], np.ndarray]:
        info = self.manifest.tokenizer
        path = self.directory / str(info.get("file", ""))
        if info.get("kind") == "clip-bpe":
            return ClipTokenizer(path, context_length=int(info["context_length"]))
        if info.get("kind") == "hf":
            return HfTokenizer(
                path,
                context_length=int(info["context_length"]),
                clean=info.get("clean", "whitespace"),
                pad_id=int(info.get("pad_id", 0)),
                strip_sep_id=info.get("strip_sep_id"),
            )
        raise ModelUnavailable(f"Model {self.manifest.name!r} has an unknown tokenizer {info!r}.")

    def _session(self, filename: str) -> ort.InferenceSession:
        with self._lock:
            session = self._sessions.get(filename)
            if session is None:
                path = self.directory / filename
                if not path.is_file():
                    hint = " (exported without int8; re-run `vitrine models export`)" if "int8" in filename else ""
                    raise ModelUnavailable(f"Model {self.manifest.name!r} lacks {path}{hint}.")
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                # Idle inference threads sleep instead of spinning: decoding shares these cores,
                # and spinning cost the decode-included pipeline 10% of its rate here.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                self._sessions[filename] = session
            return session

"""A colour-histogram embedder: the evaluation's no-learning baseline, behind the same `Embedder` interface.

An image becomes its joint RGB histogram (8 levels per channel, 512 bins), square-rooted and
L2-normalised, so the inner product the index computes is the Bhattacharyya coefficient of two
colour distributions. Texts map the colour words they contain to the histogram of that colour
(and to a flat histogram when they name none), so text search runs too, knowing only colours.
The trained model has to beat what colour alone can do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from demo.products import COLOURS, MATERIALS
from vision.embedder import l2_normalise
from vision.manifest import ModelManifest
from vision.preprocess import PreprocessConfig, preprocess_batch

LEVELS = 8
DIM = LEVELS**3


def color_histogram_manifest(image_size: int = 96) -> ModelManifest:
    return ModelManifest(
        name="color-histogram",
        architecture="color-histogram",
        source={"kind": "baseline"},
        embed_dim=DIM,
        preprocess=PreprocessConfig(image_size=(image_size, image_size)),
        tokenizer={"kind": "colour-words"},
        description="Joint RGB histogram (8x8x8), square-rooted: a baseline that only knows colour.",
    )


class ColorHistogramEmbedder:
    """Images and colour words to 512-d unit vectors of colour distribution."""

    def __init__(self, manifest: ModelManifest | None = None) -> None:
        self.manifest = manifest or color_histogram_manifest()
        self._mean = np.asarray(self.manifest.preprocess.mean, np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(self.manifest.preprocess.std, np.float32).reshape(1, 3, 1, 1)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        rgb = np.clip(pixels * self._std + self._mean, 0.0, 1.0)  # undo the model normalisation
        levels = np.minimum((rgb * LEVELS).astype(np.int64), LEVELS - 1)
        bins = (levels[:, 0] * LEVELS + levels[:, 1]) * LEVELS + levels[:, 2]
        flat = bins.reshape(len(bins), -1)
        counts = np.zeros((len(flat), DIM), np.float32)
        for row, values in enumerate(flat):
            counts[row] = np.bincount(values, minlength=DIM)
        return l2_normalise(np.sqrt(counts))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_pixels(preprocess_batch(images, self.manifest.preprocess))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        named = {**COLOURS, **{k: v for k, v in MATERIALS.items() if v is not None}}
        for row, text in enumerate(texts):
            lowered = f" {text.lower()} "
            for word, rgb in named.items():
                if f" {word} " in lowered:
                    r, g, b = (min(int(c / 256 * LEVELS), LEVELS - 1) for c in rgb)
                    out[row, (r * LEVELS + g) * LEVELS + b] += 1.0
            if not out[row].any():
                out[row] = 1.0
        return l2_normalise(np.sqrt(out))

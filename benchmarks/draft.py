"""`vitrine bench draft`: what each step of preparing a photo costs, and what decoding smaller
(JPEG draft scaling) does to the embedding, on given photos with a given model.

Why: the ingest's cost besides inference is mostly decoding and resizing; decoding at a smaller
DCT scale is the one large saving left, and it is only worth taking if the embeddings stay close
to those of exact decoding. This measures both in one run, so the choice can be re-checked on any
model and any photos.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vision.decode import decode_image
from vision.embedder import Embedder
from vision.pipeline import make_thumbnail
from vision.preprocess import PreprocessConfig, preprocess

#: Draft targets tried, as multiples of the model's input side (each compared with exact decoding).
FACTORS: tuple[float, ...] = (1.5, 1.25, 1.0)


def run_draft_bench(embedder: Embedder, files: Sequence[Path], factors: Sequence[float] = FACTORS) -> dict:
    """Per factor: milliseconds per photo for decoding and preprocessing, and the cosine of each
    photo's embedding with its exact-decode embedding (min, 1st percentile, mean). Also the steps of
    the default path (decode, preprocess, thumbnail) timed apart."""
    config = embedder.manifest.preprocess
    photos = [Path(f).read_bytes() for f in files]
    exact_pixels, exact_ms = _prepare(photos, None, config)
    exact = embedder.embed_pixels(exact_pixels)
    rows = []
    for factor in factors:
        draft = math.ceil(factor * max(config.image_size))
        pixels, ms = _prepare(photos, draft, config)
        cosines = np.sum(embedder.embed_pixels(pixels) * exact, axis=1)
        rows.append(
            {
                "draft_factor": factor,
                "draft_size": draft,
                "decode_and_preprocess_ms": round(ms, 2),
                "cosine_to_exact_min": round(float(cosines.min()), 5),
                "cosine_to_exact_p1": round(float(np.percentile(cosines, 1)), 5),
                "cosine_to_exact_mean": round(float(cosines.mean()), 6),
            }
        )
    return {
        "model": embedder.manifest.name,
        "photos": len(photos),
        "input_size": list(config.image_size),
        "default_draft_size": config.draft_size,
        "exact_decode_and_preprocess_ms": round(exact_ms, 2),
        "default_path_steps_ms": _steps(photos, config),
        "factors": rows,
    }


def _prepare(photos: list[bytes], draft: int | None, config: PreprocessConfig) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    pixels = np.stack([preprocess(decode_image(data, draft_size=draft), config) for data in photos])
    return pixels, 1000 * (time.perf_counter() - began) / len(photos)


def _steps(photos: list[bytes], config: PreprocessConfig) -> dict[str, float]:
    """The ingest's path for one photo, step by step (draft decoding at the model's default)."""
    totals = {"decode": 0.0, "preprocess": 0.0, "thumbnail": 0.0}
    for data in photos:
        began = time.perf_counter()
        image = decode_image(data, draft_size=config.draft_size)
        decoded = time.perf_counter()
        preprocess(image, config)
        preprocessed = time.perf_counter()
        make_thumbnail(image)
        finished = time.perf_counter()
        totals["decode"] += decoded - began
        totals["preprocess"] += preprocessed - decoded
        totals["thumbnail"] += finished - preprocessed
    return {step: round(1000 * seconds / len(photos), 2) for step, seconds in totals.items()}

"""The process's Prometheus metrics below the web layer: search stages, micro-batch sizes, ingest
counts, payment outcomes.

One small module, in `catalog` because `catalog_ingest` and `workflow` may import it (the README's
layout table) while `vision` and `index` stay free of metrics: their work is timed around the calls
into them, here and in `catalog.search_service`. The web layer adds per-route counts and latency and
serves everything at /metrics (`api.metrics`). Metrics live in prometheus-client's default registry,
once per process (several apps in one process, as in the tests, share them).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram

from vision.decode import ImageSource
from vision.micro_batch import MicroBatchEmbedder

#: Seconds, from a cached index lookup (well under a millisecond) to a slow decode of a large photo.
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

STAGE_SECONDS = Histogram(
    "vitrine_search_stage_seconds",
    "Time per stage of a query: decode (an upload to pixels), embed (one micro-batch in the model), "
    "index (the vector search), database (the products of the hits).",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
BATCH_SIZE = Histogram(
    "vitrine_embed_batch_size",
    "Queries per micro-batch sent to the model, by tower (image or text).",
    ["tower"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
)
INGEST_ROWS = Counter(
    "vitrine_ingest_rows_total",
    "Catalog rows of finished ingests, by outcome (accepted, updated, unchanged, rejected).",
    ["outcome"],
)
INGEST_IMAGES = Counter(
    "vitrine_ingest_images_total",
    "Product images of finished ingests: embedded, or reused from the vector store.",
    ["outcome"],
)
PAYMENT_OUTCOMES = Counter(
    "vitrine_payment_outcomes_total",
    "Accepts settled by the payment saga, by outcome (paid, declined, voided, unknown: no answer yet).",
    ["outcome"],
)

for _stage in ("decode", "embed", "index", "database"):
    STAGE_SECONDS.labels(_stage)  # every series exists from the start, at zero
for _outcome in ("paid", "declined", "voided", "unknown"):
    PAYMENT_OUTCOMES.labels(_outcome)
for _outcome in ("accepted", "updated", "unchanged", "rejected"):
    INGEST_ROWS.labels(_outcome)
for _outcome in ("embedded", "reused"):
    INGEST_IMAGES.labels(_outcome)
for _tower in ("image", "text"):
    BATCH_SIZE.labels(_tower)


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Observe how long the block took as `stage` of `vitrine_search_stage_seconds` (failures too)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage).observe(time.perf_counter() - began)


def count_ingest(rows: dict[str, int], images: dict[str, int]) -> None:
    """Add a finished ingest's row and image counts, e.g. rows={"accepted": 3, "rejected": 1}."""
    for outcome, count in rows.items():
        INGEST_ROWS.labels(outcome).inc(count)
    for outcome, count in images.items():
        INGEST_IMAGES.labels(outcome).inc(count)


class _TimedEmbedder:
    """An embedder whose batch calls are timed and sized; everything else goes to the embedder itself."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        BATCH_SIZE.labels("image").observe(len(pixels))
        with timed("embed"):
            return self._embedder.embed_pixels(pixels)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        BATCH_SIZE.labels("text").observe(len(texts))
        with timed("embed"):
            return self._embedder.embed_texts(texts)


class MeasuredMicroBatchEmbedder(MicroBatchEmbedder):
    """`vision.micro_batch.MicroBatchEmbedder` with its decodes and batches measured, from outside vision."""

    def __init__(self, embedder: Any, **batching: Any) -> None:
        super().__init__(_TimedEmbedder(embedder), **batching)

    def pixels(self, source: ImageSource, crop: Any = None) -> np.ndarray:
        with timed("decode"):
            return super().pixels(source, crop)

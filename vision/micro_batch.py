"""Micro-batching: concurrent embed requests share one inference call.

A batched inference call costs far less per item than single calls, but a request must not wait
for company that never comes. A batch therefore closes when it is full (`max_batch`), when its
oldest request has waited `window_ms`, or at once when no other request is queued or on its way
(an upload still being decoded), whichever comes first. While the model is busy, new requests
queue up; once it is free they are already past their window and go in the next batch at once, so
under load batches grow with concurrency and nobody waits for the clock.

Decoding and preprocessing of uploads run in a thread pool (Pillow releases the GIL), so the next
batch's photos are decoded while the current batch is in the model. Everything here is plain
threads and `concurrent.futures`; the `async` methods wrap them for an event loop, which is never
blocked.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from vision.crop import Crop, crop_fraction, draft_size_for_crop, validate_crop
from vision.decode import DEFAULT_LIMITS, UPLOAD_LIMITS, DecodeLimits, ImageSource, PixelBudget, decode_image
from vision.embedder import Embedder
from vision.preprocess import preprocess

Item = TypeVar("Item")


@dataclass
class _Request(Generic[Item]):
    item: Item
    future: Future[np.ndarray]
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the batcher has done: how many calls, how many items, the largest batch."""

    batches: int = 0
    items: int = 0
    largest: int = 0

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)

    def to_json(self) -> dict:
        return {
            "batches": self.batches,
            "items": self.items,
            "largest": self.largest,
            "mean": round(self.items / self.batches, 2) if self.batches else 0.0,
        }


class MicroBatcher(Generic[Item]):
    """Runs `run_batch(items) -> (N, D) array` on one worker thread, over batches of concurrent requests.

    `submit` returns a `Future` of the item's own row. An exception raised by `run_batch` is set on
    every future of that batch; the worker carries on with the next one. `more_coming`, when given,
    says whether any request is on its way (e.g. being decoded): if none is and none is queued, the
    batch goes at once instead of waiting out the window for company that cannot come.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Item]], np.ndarray],
        window_ms: float = 4.0,
        max_batch: int = 16,
        name: str = "micro-batch",
        more_coming: Callable[[], bool] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if window_ms < 0:
            raise ValueError("window_ms must not be negative")
        self.run_batch = run_batch
        self.more_coming = more_coming or (lambda: True)
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.stats = BatchStats()
        self._queue: queue.SimpleQueue[_Request[Item] | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    def submit(self, item: Item) -> Future[np.ndarray]:
        with self._close_lock:
            if self._closed:
                raise RuntimeError("the micro-batcher is closed")
            future: Future[np.ndarray] = Future()
            self._queue.put(_Request(item, future))
            return future

    async def embed(self, item: Item) -> np.ndarray:
        """`submit` for an event loop: awaits the row without blocking the loop."""
        return await asyncio.wrap_future(self.submit(item))

    def close(self) -> None:
        """Finish the queued requests, then stop the worker."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._worker.join()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            self._run(batch)
            if stop:
                return

    def _collect(self, first: _Request[Item]) -> tuple[list[_Request[Item]], bool]:
        """The first request plus whatever arrives before its window closes, up to `max_batch`."""
        batch = [first]
        deadline = first.arrived + self.window
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining > 0 and self._queue.empty() and not self.more_coming():
                break
            try:
                request = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if request is None:
                return batch, True
            batch.append(request)
        return batch, False

    def _run(self, batch: list[_Request[Item]]) -> None:
        # A caller that gave up (its future cancelled) is dropped here, before costing inference.
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            rows = self.run_batch([r.item for r in live])
            if len(rows) != len(live):
                raise RuntimeError(f"the batch function returned {len(rows)} rows for {len(live)} items")
        except BaseException as exc:  # every waiting caller must hear of it, whatever it is
            for request in live:
                request.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.stats.record(len(live))
        for request, row in zip(live, rows, strict=True):
            request.future.set_result(row)


def load_query_pixels(
    source: ImageSource,
    embedder: Embedder,
    crop: Crop | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
    budget: PixelBudget | None = None,
) -> np.ndarray:
    """Decode (JPEG draft-scaled, enough to keep a crop sharp), crop and preprocess one upload: (3, H, W)."""
    config = embedder.manifest.preprocess
    crop = validate_crop(crop) if crop is not None else None
    image = decode_image(source, limits, draft_size=draft_size_for_crop(config.draft_size, crop), budget=budget)
    if crop is not None:
        image = crop_fraction(image, crop)
    return preprocess(image, config)


class MicroBatchEmbedder:
    """An embedder's image and text towers behind micro-batchers, with uploads decoded in a thread pool.

    `embed_image` raises `ImageRejected` for an unusable upload, exactly as `decode_image` does.
    Uploads are refused over `limits` (by default the customer upload limits) and decoded under
    `budget` (by default the process-wide `vision.decode.DECODE_BUDGET`): over it, decodes wait.
    """

    def __init__(
        self,
        embedder: Embedder,
        window_ms: float = 4.0,
        max_batch: int = 16,
        decode_workers: int = 2,
        limits: DecodeLimits = UPLOAD_LIMITS,
        budget: PixelBudget | None = None,
    ) -> None:
        self.embedder = embedder
        self.limits = limits
        self.budget = budget
        self._decoding = 0  # uploads being decoded: each will join the image queue shortly
        self._decoding_lock = threading.Lock()
        self.images: MicroBatcher[np.ndarray] = MicroBatcher(
            lambda pixels: embedder.embed_pixels(np.stack(pixels)),
            window_ms,
            max_batch,
            name="embed-images",
            more_coming=lambda: self._decoding > 0,
        )
        self.texts: MicroBatcher[str] = MicroBatcher(embedder.embed_texts, window_ms, max_batch, name="embed-texts")
        self._decode = ThreadPoolExecutor(max_workers=decode_workers, thread_name_prefix="decode-upload")

    def pixels(self, source: ImageSource, crop: Crop | None = None) -> np.ndarray:
        return load_query_pixels(source, self.embedder, crop, self.limits, self.budget)

    async def embed_image(self, source: ImageSource, crop: Crop | None = None) -> np.ndarray:
        """One upload's unit vector: decoded off the loop, then embedded with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        with self._decoding_lock:
            self._decoding += 1
        try:
            pixels = await loop.run_in_executor(self._decode, self.pixels, source, crop)
            future = self.images.submit(pixels)  # queued before it stops counting as on its way
        finally:
            with self._decoding_lock:
                self._decoding -= 1
        return await asyncio.wrap_future(future)

    async def embed_text(self, text: str) -> np.ndarray:
        return await self.texts.embed(text)

    def close(self) -> None:
        self.images.close()
        self.texts.close()
        self._decode.shutdown(wait=True)

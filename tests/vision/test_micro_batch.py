"""Micro-batching: concurrent callers share inference calls and each gets exactly its own vector."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from catalogs import product_photo

from vision.embedder import open_embedder
from vision.errors import ImageRejected
from vision.micro_batch import MicroBatchEmbedder, MicroBatcher, load_query_pixels


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


# A window no test waits out: a batch under test must close because it is full or because no more
# requests can come, never on the clock, so how busy the machine is cannot change its make-up.
NEVER_MS = 600_000.0


def _photos(count: int) -> list[bytes]:
    return [product_photo(seed, size=96 + 8 * (seed % 5)) for seed in range(count)]


async def _gather_images(batcher: MicroBatchEmbedder, photos: list[bytes]) -> list[np.ndarray]:
    return await asyncio.gather(*(batcher.embed_image(p) for p in photos))


def test_concurrent_callers_get_their_own_unbatched_vectors(embedder) -> None:
    photos = _photos(24)
    expected = np.stack([embedder.embed_pixels(load_query_pixels(p, embedder)[None])[0] for p in photos])
    batcher = MicroBatchEmbedder(embedder, window_ms=NEVER_MS, max_batch=8)
    try:
        got = np.stack(asyncio.run(_gather_images(batcher, photos)))
        stats = batcher.images.stats
    finally:
        batcher.close()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # distinct photos give distinct vectors, so a mix-up of rows could not pass the check above
    assert np.abs(got[0] - got[1]).max() > 1e-3
    # all 24 are on their way (being decoded) from the start, so batches close full, not on the clock
    assert stats.items == len(photos)
    assert stats.largest > 1, "concurrent requests were never batched together"
    assert stats.largest <= 8
    assert len(photos) // 8 <= stats.batches < len(photos)


def test_texts_are_batched_and_match_unbatched(embedder) -> None:
    texts = ["red mug", "silver earrings", "a lamp with a green shade", "mug"]
    expected = embedder.embed_texts(texts)
    # the window never closes: the four concurrent texts fill the batch and it goes
    batcher = MicroBatchEmbedder(embedder, window_ms=NEVER_MS, max_batch=len(texts))

    async def run() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.embed_text(t) for t in texts))

    try:
        got = np.stack(asyncio.run(run()))
    finally:
        batcher.close()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert batcher.texts.stats.to_json() == {"batches": 1, "items": 4, "largest": 4, "mean": 4.0}


def test_lone_caller_waits_out_the_window_then_goes_alone() -> None:
    window_ms = 30.0
    batcher: MicroBatcher[int] = MicroBatcher(lambda items: np.asarray(items, np.float32)[:, None], window_ms, 16)
    try:
        waits = []
        for value in range(5):
            began = time.perf_counter()
            # no other request ever comes: only the window's end can release this one
            row = batcher.submit(value).result(timeout=60)
            waits.append(time.perf_counter() - began)
            assert row.tolist() == [value]
    finally:
        batcher.close()
    # it waited for company up to the window (a busy machine only adds to a wait), then went alone
    assert min(waits) >= window_ms / 1000 * 0.8
    # and no longer than the window, give or take a busy machine: the median at 100 windows would
    # mean the window is not what releases a lone request
    assert sorted(waits)[len(waits) // 2] < 100 * window_ms / 1000
    assert batcher.stats.to_json() == {"batches": 5, "items": 5, "largest": 1, "mean": 1.0}


def test_nobody_waits_for_company_that_cannot_come(embedder) -> None:
    # with nothing queued and nothing on its way, a batch goes at once: the window (ten minutes) never ends it
    quick: MicroBatcher[int] = MicroBatcher(
        lambda items: np.asarray(items, np.float32)[:, None], NEVER_MS, 16, more_coming=lambda: False
    )
    try:
        assert quick.submit(5).result(timeout=60).tolist() == [5]
    finally:
        quick.close()
    # in the embedder, an upload being decoded is the company on its way, and nothing else is
    batcher = MicroBatchEmbedder(embedder, window_ms=20, max_batch=8)
    photo = _photos(1)[0]
    decoding, release = threading.Event(), threading.Event()
    decode = batcher.pixels

    def held_decode(source, crop=None):  # type: ignore[no-untyped-def]
        decoding.set()
        release.wait(60)
        return decode(source, crop)

    async def one_upload() -> tuple[bool, np.ndarray]:
        upload = asyncio.ensure_future(batcher.embed_image(photo))
        assert await asyncio.to_thread(decoding.wait, 60)
        on_its_way = batcher.images.more_coming()
        release.set()
        return on_its_way, await upload

    try:
        assert not batcher.images.more_coming()  # idle: nothing to wait for
        batcher.pixels = held_decode  # type: ignore[method-assign]
        on_its_way, vector = asyncio.run(one_upload())
        assert on_its_way, "an upload being decoded did not count as on its way"
        assert not batcher.images.more_coming()  # submitted and embedded: nothing left on its way
    finally:
        batcher.close()
    expected = embedder.embed_pixels(load_query_pixels(photo, embedder)[None])[0]
    np.testing.assert_allclose(vector, expected, atol=1e-5)


def test_a_full_batch_goes_without_waiting_for_the_window() -> None:
    batcher: MicroBatcher[int] = MicroBatcher(lambda items: np.asarray(items, np.float32)[:, None], NEVER_MS, 4)
    try:
        futures = [batcher.submit(i) for i in range(4)]
        # served long before the ten-minute window could end the batch: it went because it was full
        rows = [f.result(timeout=60) for f in futures]
    finally:
        batcher.close()
    assert [r.tolist() for r in rows] == [[0], [1], [2], [3]]
    assert batcher.stats.to_json() == {"batches": 1, "items": 4, "largest": 4, "mean": 4.0}


def test_inference_error_reaches_every_waiting_caller_and_the_batcher_recovers() -> None:
    busy, release = threading.Event(), threading.Event()
    calls: list[list[int]] = []

    def run(items: list[int]) -> np.ndarray:
        calls.append(list(items))
        if len(calls) == 1:
            busy.set()
            release.wait(60)  # hold the worker so the next requests pile up into one batch
            return np.asarray(items, np.float32)[:, None]
        if len(calls) == 2:
            raise RuntimeError("inference failed")
        return np.asarray(items, np.float32)[:, None] * 2

    batcher: MicroBatcher[int] = MicroBatcher(run, 1.0, 16)
    try:
        first = batcher.submit(100)
        assert busy.wait(60)  # the first batch is in the model: everything submitted now queues behind it
        doomed = [batcher.submit(i) for i in range(5)]
        release.set()
        assert first.result(timeout=60).tolist() == [100]
        for future in doomed:
            with pytest.raises(RuntimeError, match="inference failed"):
                future.result(timeout=60)
        assert calls[1] == [0, 1, 2, 3, 4]
        assert batcher.submit(7).result(timeout=60).tolist() == [14]
    finally:
        batcher.close()


def test_wrong_row_count_is_an_error_for_the_callers() -> None:
    batcher: MicroBatcher[int] = MicroBatcher(lambda items: np.zeros((len(items) + 1, 2), np.float32), 1.0, 16)
    try:
        with pytest.raises(RuntimeError, match="rows"):
            batcher.submit(1).result(timeout=60)
    finally:
        batcher.close()


def test_closed_batcher_refuses_new_work() -> None:
    batcher: MicroBatcher[int] = MicroBatcher(lambda items: np.zeros((len(items), 1), np.float32), 1.0, 16)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1)


def test_bad_upload_is_rejected_and_others_in_flight_are_unharmed(embedder) -> None:
    good = _photos(3)
    batcher = MicroBatchEmbedder(embedder, window_ms=20, max_batch=8)

    async def run():
        return await asyncio.gather(*(batcher.embed_image(p) for p in [*good, b"not an image"]), return_exceptions=True)

    try:
        results = asyncio.run(run())
    finally:
        batcher.close()
    assert isinstance(results[3], ImageRejected)
    for vector in results[:3]:
        assert isinstance(vector, np.ndarray)
        assert abs(float(np.linalg.norm(vector)) - 1) < 1e-4


def test_crop_embeds_the_region(embedder) -> None:
    photo = product_photo(3, size=200)
    whole = embedder.embed_pixels(load_query_pixels(photo, embedder)[None])[0]
    corner = embedder.embed_pixels(load_query_pixels(photo, embedder, crop=(0.0, 0.0, 0.4, 0.4))[None])[0]
    full_crop = embedder.embed_pixels(load_query_pixels(photo, embedder, crop=(0.0, 0.0, 1.0, 1.0))[None])[0]
    np.testing.assert_allclose(full_crop, whole, atol=1e-5)
    assert float(corner @ whole) < 0.999
    with pytest.raises(ValueError, match="inside the image"):
        load_query_pixels(photo, embedder, crop=(0.5, 0.5, 0.6, 0.2))

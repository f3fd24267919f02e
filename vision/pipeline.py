"""Decode-and-embed pipeline: decoding of the next batch overlaps inference of the current one.

Pillow releases the GIL while it decodes and resamples, so a small thread pool keeps the
model fed. A bad image yields its `ImageRejected` in place and never stops the batch.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vision.decode import DEFAULT_LIMITS, DecodeLimits, ImageSource, decode_image
from vision.embedder import Embedder
from vision.errors import ImageRejected
from vision.preprocess import PreprocessConfig, preprocess

#: Longest side of catalog thumbnails (what the operator and vendor pages show).
THUMBNAIL_SIZE = 256


@dataclass(frozen=True)
class EmbedResult:
    """One input's outcome: a unit vector (with the decoded size and, if asked, a JPEG thumbnail),
    or the reason it was refused."""

    index: int
    vector: np.ndarray | None = None
    error: ImageRejected | None = None
    size: tuple[int, int] | None = None
    thumbnail: bytes | None = None


@dataclass(frozen=True)
class _Decoded:
    pixels: np.ndarray
    size: tuple[int, int]
    thumbnail: bytes | None


def load_pixels(
    source: ImageSource, config: PreprocessConfig, limits: DecodeLimits = DEFAULT_LIMITS, fast: bool = True
) -> np.ndarray:
    """Decode (with JPEG draft scaling when `fast`) and preprocess one image to (3, H, W)."""
    image = decode_image(source, limits, draft_size=config.draft_size if fast else None)
    return preprocess(image, config)


def _decode_for_embedding(
    source: ImageSource, config: PreprocessConfig, limits: DecodeLimits, fast: bool, thumbnail_size: int | None
) -> _Decoded:
    image = decode_image(source, limits, draft_size=config.draft_size if fast else None)
    thumbnail = make_thumbnail(image, thumbnail_size) if thumbnail_size else None
    return _Decoded(preprocess(image, config), image.size, thumbnail)


def make_thumbnail(image: Image.Image, longest: int = THUMBNAIL_SIZE) -> bytes:
    """A JPEG preview of `image` fitting `longest` x `longest`, made without touching `image`.

    reducing_gap=1: a box reduction by whole factors first, then bicubic over the remainder, at
    half the cost of bicubic all the way (the thumbnail is a preview, not what is embedded)."""
    size = thumbnail_dimensions(image.size, longest)
    small = image if size == image.size else image.resize(size, Image.Resampling.BICUBIC, reducing_gap=1.0)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    return out.getvalue()


def thumbnail_dimensions(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """The size `Image.thumbnail((longest, longest))` gives (aspect kept, never enlarged), without
    the copy of the full image that an in-place thumbnail of a shared image needs."""
    width, height = size
    if width <= longest and height <= longest:
        return size
    aspect = width / height
    if aspect >= 1:
        new_height = _round_aspect(longest / aspect, lambda n: 0 if n == 0 else abs(aspect - longest / n))
        return longest, new_height
    return _round_aspect(longest * aspect, lambda n: abs(aspect - n / longest)), longest


def _round_aspect(number: float, error: Callable[[int], float]) -> int:
    """Pillow's rounding for thumbnails: floor or ceiling, whichever keeps the aspect closer."""
    return max(min(math.floor(number), math.ceil(number), key=error), 1)


def embed_sources(
    embedder: Embedder,
    sources: Iterable[ImageSource],
    batch_size: int = 32,
    workers: int = 2,
    limits: DecodeLimits = DEFAULT_LIMITS,
    fast: bool = True,
    thumbnail_size: int | None = None,
) -> Iterator[EmbedResult]:
    """Embed many images in order, yielding one result per input as batches complete.

    `thumbnail_size`: also return a JPEG thumbnail made from the decoded image (no second decode).
    Sizes are of the decoded image (after any draft scaling), upright.
    """
    config = embedder.manifest.preprocess
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: list[tuple[int, Future[_Decoded]]] = []
        # Keep one batch decoding ahead of the batch being embedded.
        for index, source in enumerate(sources):
            pending.append((index, pool.submit(_decode_for_embedding, source, config, limits, fast, thumbnail_size)))
            if len(pending) >= 2 * batch_size:
                yield from _embed_ready(embedder, pending[:batch_size])
                del pending[:batch_size]
        while pending:
            yield from _embed_ready(embedder, pending[:batch_size])
            del pending[:batch_size]


def _embed_ready(embedder: Embedder, batch: list[tuple[int, Future[_Decoded]]]) -> Iterator[EmbedResult]:
    good: list[tuple[int, _Decoded]] = []
    failed: dict[int, ImageRejected] = {}
    for index, future in batch:
        try:
            good.append((index, future.result()))
        except ImageRejected as exc:
            failed[index] = exc
        except Exception as exc:  # a decoder bug must not sink the other images
            failed[index] = ImageRejected(f"The image could not be processed ({type(exc).__name__}: {exc}).")
    vectors = embedder.embed_pixels(np.stack([d.pixels for _, d in good])) if good else None
    decoded = {index: (row, d) for row, (index, d) in enumerate(good)}
    for index, _ in batch:
        if index in failed:
            yield EmbedResult(index, error=failed[index])
        else:
            row, d = decoded[index]
            assert vectors is not None
            yield EmbedResult(index, vector=vectors[row], size=d.size, thumbnail=d.thumbnail)

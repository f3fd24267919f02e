"""Safe, bounded image decoding: bytes, a path or a file object in, an RGB PIL image out.

Every limit is checked before the expensive step it protects: the byte size before reading
the whole input, the pixel count from the header before decoding any pixel data. Any
failure becomes one `ImageRejected` whose message a customer or a vendor can act on.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vision.errors import ImageRejected, ImageTooLarge, ImageUnsupported

try:  # HEIC/HEIF support is optional: present when the pillow-heif plugin is installed.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - depends on the installation
    pass

# Our own pixel limit is stricter and configurable, so Pillow's warning is noise here;
# Pillow's hard error (at twice its own limit) still fires and is turned into a refusal.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

Image.init()
#: Formats we accept, where a plugin for them is installed. Restricting Pillow to these keeps
#: exotic parsers (EPS runs Ghostscript, for one) away from untrusted input. The JPEG opener
#: also reads MPO, the multi-picture JPEG many cameras write.
ACCEPTED_FORMATS = tuple(f for f in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF") if f in Image.OPEN)
_DRAFTABLE_FORMATS = {"JPEG", "MPO"}
_READ_CHUNK = 1 << 20
_EXIF_ORIENTATION = 0x0112

ImageSource = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on what one image may cost. Pixels count what is actually decoded into memory."""

    max_bytes: int = 25 * 1000 * 1000
    max_pixels: int = 50_000_000
    min_side: int = 16


DEFAULT_LIMITS = DecodeLimits()
#: The one limit on customer uploads: the request form, `/api/requests` and `/api/search` alike
#: (`workflow.settings.Settings` takes its defaults from here).
UPLOAD_LIMITS = DecodeLimits(max_bytes=10 * 1000 * 1000, max_pixels=40_000_000)

#: Bytes of memory one decoded pixel may cost at the peak of `decode_image` (a 32-bit grey source,
#: its 8-bit copy, the RGB result and an RGBA composite for transparency), for sizing the budget.
_PEAK_BYTES_PER_PIXEL = 16
_BUDGET_ENV = "VITRINE_DECODE_MEGAPIXELS"
#: Rows of a wide (16/32-bit) image scaled to 8 bits at a time: bounds the float32 scratch.
_SCALE_ROWS_PIXELS = 1 << 20


class PixelBudget:
    """A process-wide bound on the pixels being decoded at once: a counting semaphore in pixels.

    `hold(pixels)` waits (first come, first served) until the pixels fit beside those already in
    flight; an image larger than the whole budget still goes, alone, so nothing is ever refused
    or stuck here, only delayed.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the pixel budget must be at least one pixel")
        self.capacity = capacity
        self.in_flight = 0
        self.peak = 0  # the most pixels ever held at once (for tests and diagnostics)
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        self.acquire(pixels)
        try:
            yield
        finally:
            self.release(pixels)

    def acquire(self, pixels: int) -> None:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                self._cond.wait_for(
                    lambda: (
                        self._waiting[0] is ticket and (self.in_flight == 0 or self.in_flight + pixels <= self.capacity)
                    )
                )
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()
            self.in_flight += pixels
            self.peak = max(self.peak, self.in_flight)

    def release(self, pixels: int) -> None:
        with self._cond:
            self.in_flight -= pixels
            self._cond.notify_all()


def default_budget_pixels(environ: dict[str, str] | None = None) -> int:
    """`VITRINE_DECODE_MEGAPIXELS`, or an eighth of the machine's memory at the peak cost per pixel
    (at least one image at the upload limit, at most 500 megapixels)."""
    given = (environ if environ is not None else os.environ).get(_BUDGET_ENV, "").strip()
    if given:
        megapixels = float(given)
        if not megapixels > 0:
            raise ValueError(f"{_BUDGET_ENV} must be a positive number of megapixels, not {given!r}")
        return int(megapixels * 1e6)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        memory = 8 << 30
    return int(min(max(memory // 8 // _PEAK_BYTES_PER_PIXEL, DEFAULT_LIMITS.max_pixels), 500_000_000))


#: Every decode in this process shares this budget (uploads in the search thread pool, ingest workers).
DECODE_BUDGET = PixelBudget(default_budget_pixels())


def decode_image(
    source: ImageSource,
    limits: DecodeLimits = DEFAULT_LIMITS,
    draft_size: int | None = None,
    budget: PixelBudget | None = None,
) -> Image.Image:
    """Decode `source` into an upright RGB image, or raise `ImageRejected`.

    `draft_size`, when given, lets a JPEG be decoded with DCT scaling so that its short
    side is at least `draft_size` pixels (pass about twice the model's input size): far
    faster on camera photos, and the pixel limit then applies to the scaled-down size.
    The pixel data is decoded under `budget` (default: the process-wide `DECODE_BUDGET`), so
    concurrent decodes wait rather than together exhaust memory.
    """
    data = _read_bounded(source, limits.max_bytes)
    if not data:
        raise ImageRejected("The file is empty (0 bytes); please upload the photo again.")
    if _looks_like_svg(data):
        raise ImageUnsupported("SVG vector images are not supported; please export the picture as JPEG or PNG.")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageUnsupported(
            "This is not an image we can read; please send a JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF photo."
        ) from None
    except Image.DecompressionBombError:
        raise _too_many_pixels(None, limits) from None
    except Exception as exc:  # Pillow raises many types on corrupt headers
        raise ImageRejected(f"The image header is damaged and cannot be read ({_reason(exc)}).") from None

    with image:
        width, height = image.size
        if min(width, height) < limits.min_side:
            raise ImageRejected(
                f"The image is too small ({width}x{height} pixels); it must be at least "
                f"{limits.min_side} pixels on each side."
            )
        if draft_size and image.format in _DRAFTABLE_FORMATS:
            image.draft("RGB", (draft_size, draft_size))
        if image.width * image.height > limits.max_pixels:
            raise _too_many_pixels(image.size, limits)
        try:
            with (budget or DECODE_BUDGET).hold(image.width * image.height):
                image.seek(0)  # first frame of an animation or of a multi-page file
                image.load()
                return _to_rgb(_upright(image))
        except Image.DecompressionBombError:
            raise _too_many_pixels(image.size, limits) from None
        except Exception as exc:  # any decoder failure is the file's fault, never a crash
            if "truncated" in str(exc).lower():
                raise ImageRejected(
                    "The image file is truncated (the upload or download was cut short); please send the complete file."
                ) from None
            raise ImageRejected(f"The image data is damaged and cannot be decoded ({_reason(exc)}).") from None


def _read_bounded(source: ImageSource, max_bytes: int) -> bytes:
    """Read at most `max_bytes`; refuse larger input without reading it whole."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > max_bytes:
            raise _too_many_bytes(len(data), max_bytes)
        return data
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise _too_many_bytes(size, max_bytes)
            with path.open("rb") as handle:
                return _read_stream(handle, max_bytes)
        except FileNotFoundError:
            raise ImageRejected(f"No such file: {path}.") from None
        except IsADirectoryError:
            raise ImageRejected(f"{path} is a folder, not an image file.") from None
        except PermissionError:
            raise ImageRejected(f"{path} cannot be read (permission denied).") from None
    return _read_stream(source, max_bytes)


def _read_stream(stream: BinaryIO, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_READ_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise _too_many_bytes(None, max_bytes)


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; skip the copy Pillow would make when there is none."""
    if image.getexif().get(_EXIF_ORIENTATION, 1) in (0, 1):
        return image
    return ImageOps.exif_transpose(image)


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return (
        head.startswith(b"<svg")
        or (head.startswith(b"<?xml") and b"<svg" in head)
        or (head.startswith(b"<!doctype svg"))
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB: wide integers rescaled, alpha composited on white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        image = _wide_grey_to_8bit(image)
        mode = image.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_grey_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey (PNG, TIFF) to 8-bit, keeping the tonal range instead of clipping it.

    Scaled a band of rows at a time in float32, so the only full-size allocation is the 8-bit
    result: never a float64 copy of the image (8 bytes a pixel, and more for each temporary).
    """
    _, high = image.getextrema()
    if image.mode == "F":
        top = 1.0 if high <= 1.0 else 255.0
    elif image.mode.startswith("I;16") or high > 255:
        top = 65535.0
    else:
        top = 255.0
    scale = np.float32(255.0 / top)
    width, height = image.size
    out = np.empty((height, width), np.uint8)
    step = max(1, _SCALE_ROWS_PIXELS // max(width, 1))
    for y0 in range(0, height, step):
        y1 = min(height, y0 + step)
        band = np.asarray(image.crop((0, y0, width, y1))).astype(np.float32)
        if image.mode == "F":
            np.nan_to_num(band, copy=False, nan=0.0, posinf=top, neginf=0.0)
        band *= scale
        np.clip(band, 0, 255, out=band)
        np.rint(band, out=band)
        out[y0:y1] = band
    return Image.fromarray(out)


def _too_many_bytes(size: int | None, max_bytes: int) -> ImageTooLarge:
    shown = f"{size / 1e6:.1f} MB" if size is not None else "more than that"
    return ImageTooLarge(
        f"The file is too large ({shown}); the limit is {max_bytes / 1e6:.0f} MB. Please send a smaller photo."
    )


def _too_many_pixels(size: tuple[int, int] | None, limits: DecodeLimits) -> ImageTooLarge:
    shown = f" ({size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.0f} megapixels)" if size else ""
    return ImageTooLarge(
        f"The image has too many pixels{shown}; the limit is {limits.max_pixels / 1e6:.0f} megapixels. "
        "Please send a smaller photo."
    )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]

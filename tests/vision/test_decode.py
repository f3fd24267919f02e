"""Decoding: every accepted format and mode comes out upright RGB; every bad input is refused clearly."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from images import encode, png_header_only, png_rgb16, two_colour
from PIL import Image, features

from vision.decode import DecodeLimits, decode_image
from vision.errors import ImageRejected

RED, BLUE = (220, 20, 30), (20, 40, 220)


def _close(pixel, expected, tol=12) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected, strict=True))


def _assert_two_colour(image: Image.Image, size=(64, 48), tol=12) -> None:
    assert image.mode == "RGB"
    assert image.size == size
    assert _close(image.getpixel((4, size[1] // 2)), RED, tol)
    assert _close(image.getpixel((size[0] - 5, size[1] // 2)), BLUE, tol)


@pytest.mark.parametrize(
    ("fmt", "params", "tol"),
    [
        ("JPEG", {"quality": 95}, 12),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_lzw"}, 0),
    ],
)
def test_accepts_common_formats(fmt, params, tol):
    _assert_two_colour(decode_image(encode(two_colour(), fmt, **params)), tol=tol)


def test_accepts_gif_first_frame_only():
    frames = [two_colour(), Image.new("RGB", (64, 48), (0, 200, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    _assert_two_colour(decode_image(data), tol=8)


def test_accepts_heic_when_the_plugin_is_installed():
    pytest.importorskip("pillow_heif")
    try:
        data = encode(two_colour(), "HEIF", quality=95)
    except (KeyError, OSError, ValueError) as exc:
        pytest.skip(f"this libheif cannot encode HEIC: {exc}")
    _assert_two_colour(decode_image(data), tol=20)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_accepts_avif():
    _assert_two_colour(decode_image(encode(two_colour(), "AVIF", quality=95)), tol=20)


def test_accepts_bytes_path_str_and_file_object(tmp_path: Path):
    data = encode(two_colour(), "PNG")
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    for source in (data, bytearray(data), memoryview(data), path, str(path), io.BytesIO(data), path.open("rb")):
        _assert_two_colour(decode_image(source), tol=0)


def test_cmyk_is_converted():
    cmyk = two_colour().convert("CMYK")
    _assert_two_colour(decode_image(encode(cmyk, "JPEG", quality=95)), tol=20)
    _assert_two_colour(decode_image(encode(cmyk, "TIFF")), tol=3)


def test_palette_and_grey_are_converted():
    _assert_two_colour(decode_image(encode(two_colour().convert("P"), "PNG")), tol=40)
    grey = decode_image(encode(Image.new("L", (32, 32), 77), "PNG"))
    assert grey.mode == "RGB" and grey.getpixel((5, 5)) == (77, 77, 77)
    bilevel = decode_image(encode(Image.new("1", (32, 32), 1), "PNG"))
    assert bilevel.getpixel((5, 5)) == (255, 255, 255)


def test_alpha_is_composited_on_white():
    image = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (16, 0, 32, 32))  # right half fully transparent black
    out = decode_image(encode(image, "PNG"))
    assert out.getpixel((4, 4)) == (255, 0, 0)
    assert out.getpixel((28, 4)) == (255, 255, 255)
    half = decode_image(encode(Image.new("LA", (32, 32), (0, 128)), "PNG"))
    assert _close(half.getpixel((4, 4)), (127, 127, 127), 2)


def test_palette_transparency_is_composited_on_white():
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 16, 32))
    data = encode(image, "PNG", transparency=0)
    out = decode_image(data)
    assert out.getpixel((4, 4)) == (200, 0, 0)
    assert out.getpixel((28, 4)) == (255, 255, 255)
    gif = decode_image(encode(image, "GIF", transparency=0))
    assert gif.getpixel((28, 4)) == (255, 255, 255)


def test_sixteen_bit_grey_keeps_its_tonal_range():
    values = np.full((20, 20), 65535, dtype=np.uint16)
    values[:, 10:] = 32768
    out = decode_image(encode(Image.fromarray(values), "PNG"))
    assert out.getpixel((2, 2)) == (255, 255, 255)
    assert _close(out.getpixel((15, 2)), (128, 128, 128), 1)  # not clipped to white


def test_sixteen_bit_rgb_png():
    pixels = np.zeros((20, 20, 3), dtype=np.uint16)
    pixels[..., 0] = 65535
    pixels[:, 10:, 2] = 32896
    out = decode_image(png_rgb16(pixels))
    assert out.getpixel((2, 2)) == (255, 0, 0)
    assert _close(out.getpixel((15, 2)), (255, 0, 128), 1)


@pytest.mark.parametrize(("orientation", "left_colour_at"), [(1, "left"), (3, "right"), (6, "top"), (8, "bottom")])
def test_exif_orientation_is_applied(orientation, left_colour_at):
    image = two_colour((60, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(encode(image, "JPEG", quality=95, exif=exif.tobytes()))
    width, height = out.size
    assert (width, height) == ((60, 30) if orientation in (1, 3) else (30, 60))
    probe = {
        "left": (3, height // 2),
        "right": (width - 4, height // 2),
        "top": (width // 2, 3),
        "bottom": (width // 2, height - 4),
    }[left_colour_at]
    assert _close(out.getpixel(probe), RED, 20)


# ---- refusals -------------------------------------------------------------------------------------------


def _refused(source, limits: DecodeLimits = DecodeLimits(), **kwargs) -> str:
    with pytest.raises(ImageRejected) as info:
        decode_image(source, limits, **kwargs)
    return str(info.value)


def test_refuses_empty_input(tmp_path: Path):
    assert "empty" in _refused(b"")
    empty = tmp_path / "empty.jpg"
    empty.touch()
    assert "empty" in _refused(empty)


def test_refuses_non_images_and_named_formats(tmp_path: Path):
    message = _refused(b"just some text, certainly not a picture\n" * 10)
    assert "not an image" in message and "JPEG" in message
    assert "not an image" in _refused(np.random.default_rng(0).bytes(5000))
    # A format Pillow could parse but we do not accept from strangers: EPS would run Ghostscript.
    assert "not an image" in _refused(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n" + b" " * 200)
    assert "not an image" in _refused(encode(Image.new("RGB", (32, 32)), "ICO"))


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        b"  <!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN'><svg></svg>",
    ],
)
def test_refuses_svg_with_a_clear_reason(svg):
    assert "SVG" in _refused(svg)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_refuses_truncated_images(fmt):
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    message = _refused(data[: len(data) // 2])
    assert "truncated" in message or "damaged" in message


def test_refuses_too_small_images():
    message = _refused(encode(Image.new("RGB", (40, 8)), "PNG"))
    assert "too small" in message and "40x8" in message
    assert decode_image(encode(Image.new("RGB", (8, 8)), "PNG"), DecodeLimits(min_side=8)).size == (8, 8)


def test_refuses_large_file_by_size_without_reading_it(tmp_path: Path):
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as handle:  # sparse: 30 MB on paper, nothing on disk
        handle.truncate(30 * 1000 * 1000)
    assert "too large" in _refused(huge)

    class CountingStream(io.RawIOBase):
        def __init__(self) -> None:
            self.served = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            size = 1 << 20 if size is None or size < 0 else size
            self.served += size
            return b"\xff" * size

    stream = CountingStream()
    assert "too large" in _refused(stream, DecodeLimits(max_bytes=3_000_000))
    assert stream.served <= 3_000_001  # stopped at the limit, never read the endless stream whole
    assert "too large" in _refused(b"\x00" * 2001, DecodeLimits(max_bytes=2000))


def test_refuses_decompression_bomb_from_the_header_in_milliseconds():
    bomb = png_header_only(50_000, 50_000)
    assert len(bomb) < 1000
    start = time.perf_counter()
    message = _refused(bomb)
    assert time.perf_counter() - start < 1.0  # generous: proves the pixels were never decoded
    assert "too many pixels" in message and "50 megapixels" in message


def test_refuses_over_limit_below_pillows_own_threshold():
    message = _refused(png_header_only(8000, 8000))  # 64 MP: Pillow would decode it
    assert "8000x8000" in message and "too many pixels" in message


def test_missing_path_and_folder_are_refused(tmp_path: Path):
    assert "No such file" in _refused(tmp_path / "nope.jpg")
    assert "folder" in _refused(tmp_path)


# ---- the draft fast path ---------------------------------------------------------------------------------


def test_draft_decodes_large_jpeg_at_reduced_size_at_least_the_requested_size():
    photo = encode(two_colour((2000, 1500)), "JPEG", quality=90)
    full = decode_image(photo)
    fast = decode_image(photo, draft_size=448)
    assert full.size == (2000, 1500)
    assert fast.size == (1000, 750)  # DCT scale 1/2: the largest reduction keeping >= 448 on the short side
    assert min(fast.size) >= 448
    assert _close(fast.getpixel((10, 375)), RED, 12)


def test_pixel_limit_counts_what_the_draft_decodes():
    photo = encode(two_colour((2000, 1500)), "JPEG", quality=90)
    limits = DecodeLimits(max_pixels=1_000_000)
    assert "too many pixels" in _refused(photo, limits)
    assert decode_image(photo, limits, draft_size=448).size == (1000, 750)
    png = encode(two_colour((2000, 1500)), "PNG")  # no DCT scaling for PNG: the full size counts
    assert "too many pixels" in _refused(png, limits, draft_size=448)


def test_real_93_megapixel_catalog_photo_is_accepted_through_the_draft_path(real_photos):
    largest = real_photos[0]
    with Image.open(largest) as header:
        assert header.width * header.height > 90_000_000
    assert "too many pixels" in _refused(largest)
    image = decode_image(largest, draft_size=448)
    assert image.mode == "RGB" and min(image.size) >= 448 and image.width * image.height < 2_000_000


def test_corrupted_images_only_ever_raise_image_rejected():
    """Random bit flips and cuts in every format: each input is decoded or refused, never anything else."""
    rng = np.random.default_rng(7)
    noisy = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    originals = [
        encode(noisy, "JPEG", quality=80),
        encode(noisy, "PNG"),
        encode(noisy, "GIF"),
        encode(noisy, "WEBP", quality=80),
        encode(noisy, "TIFF"),
        encode(noisy, "BMP"),
    ]
    outcomes = {"decoded": 0, "refused": 0}
    start = time.perf_counter()
    for original in originals:
        for _ in range(60):
            data = bytearray(original)
            for position in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
                data[position] = int(rng.integers(0, 256))
            if rng.random() < 0.3:
                data = data[: int(rng.integers(1, len(data)))]
            try:
                image = decode_image(bytes(data))
                assert image.mode == "RGB"
                outcomes["decoded"] += 1
            except ImageRejected as exc:
                assert str(exc)
                outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and outcomes["decoded"] > 0
    assert time.perf_counter() - start < 60  # nothing hung

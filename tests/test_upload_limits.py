"""Issue 17 item 5, decode memory: wide images convert without float64, concurrent decodes share a
pixel budget (they wait, never fail), and one honest pixel limit holds on the form and /api/search."""

from __future__ import annotations

import io
import threading
import time
import tracemalloc

import numpy as np
import pytest
from images import png_header_only, png_rgb16
from PIL import Image
from webapp import build_catalog, start_site

from vision.decode import UPLOAD_LIMITS, DecodeLimits, PixelBudget, decode_image, default_budget_pixels
from vision.embedder import open_embedder
from workflow.settings import Settings

SIDE = 4000  # 16 megapixels: a float64 copy alone is 128 MB
BIG = DecodeLimits(max_bytes=200_000_000, max_pixels=100_000_000)
#: Python-side allocations (numpy, bytes) allowed beyond the 16 MB 8-bit result; the float64
#: conversion this replaces allocated over 400 MB for these images.
PEAK_BOUND = 48 * 1000 * 1000


def _ramp(top: float, dtype) -> np.ndarray:
    """A left-to-right gradient from 0 to `top`."""
    return np.broadcast_to(np.linspace(0, top, SIDE, dtype=np.float32), (SIDE, SIDE)).astype(dtype)


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def _peak_decode(data: bytes) -> tuple[Image.Image, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        image = decode_image(data, BIG)
        return image, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _assert_gradient(image: Image.Image) -> None:
    assert image.mode == "RGB" and image.size == (SIDE, SIDE)
    row = np.asarray(image)[SIDE // 2, :, 0].astype(int)
    assert row[0] <= 1 and row[-1] >= 254  # scaled to the full 0..255
    assert (np.diff(row) >= 0).all()  # still a gradient: never decreasing ...
    assert abs(int(row[SIDE // 2]) - 128) <= 2  # ... and linear
    top_row = np.asarray(image)[0, :, 0]
    assert (top_row == row).all()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("16-bit grey PNG", lambda: _encode(Image.fromarray(_ramp(65535, np.uint16)), "PNG")),
        (
            "float TIFF",
            lambda: _encode(Image.fromarray(_ramp(1.0, np.float32)), "TIFF", compression="tiff_adobe_deflate"),
        ),
        ("32-bit int TIFF", lambda: _encode(Image.fromarray(_ramp(65535, np.int32)), "TIFF")),
    ],
)
def test_wide_images_convert_to_8_bit_in_bounded_memory(name, make) -> None:
    data = make()
    image, peak = _peak_decode(data)
    assert peak < PEAK_BOUND, f"{name}: {peak / 1e6:.0f} MB allocated while decoding"
    _assert_gradient(image)


def test_16_bit_rgb_png_and_float_out_of_range_values() -> None:
    pixels = np.zeros((32, 64, 3), np.uint16)
    pixels[:, :32] = (65535, 0, 0)
    pixels[:, 32:] = (0, 0, 65535)
    rgb = decode_image(png_rgb16(pixels))
    assert rgb.getpixel((4, 4)) == (255, 0, 0) and rgb.getpixel((60, 4)) == (0, 0, 255)
    wild = np.array([[np.nan, -5.0, 1e30, 100.0]], np.float32).repeat(16, 0).repeat(4, 1)
    grey = decode_image(_encode(Image.fromarray(wild), "TIFF"))
    assert [grey.getpixel((x, 0))[0] for x in (0, 4, 8, 12)] == [0, 0, 255, 100]


def test_concurrent_decodes_over_the_budget_wait_and_all_complete() -> None:
    budget = PixelBudget(3 * 1000 * 1000)
    photo = _encode(Image.new("RGB", (1000, 1000), (200, 30, 30)), "PNG")  # one megapixel each
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(decode_image(photo, budget=budget).size)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and results == [(1000, 1000)] * 12
    assert budget.peak <= budget.capacity and budget.in_flight == 0


def test_a_decode_over_the_budget_waits_for_room_then_runs() -> None:
    budget = PixelBudget(1_000_000)
    budget.acquire(800_000)  # a decode already in flight
    done = threading.Event()

    def work() -> None:
        decode_image(_encode(Image.new("RGB", (500, 500)), "PNG"), budget=budget)  # 0.25 MP: does not fit
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    assert not done.wait(0.3)  # waiting, not refused
    budget.release(800_000)
    assert done.wait(10)
    thread.join()
    # larger than the whole budget: goes alone rather than never
    assert decode_image(_encode(Image.new("RGB", (2000, 1000)), "PNG"), budget=budget).size == (2000, 1000)
    assert budget.in_flight == 0


def test_the_budget_is_sized_from_a_setting_or_from_memory() -> None:
    assert default_budget_pixels({"VITRINE_DECODE_MEGAPIXELS": "120"}) == 120_000_000
    sized = default_budget_pixels({})
    assert 50_000_000 <= sized <= 500_000_000
    with pytest.raises(ValueError):
        default_budget_pixels({"VITRINE_DECODE_MEGAPIXELS": "0"})


def test_the_web_app_and_the_decoder_share_one_upload_limit() -> None:
    assert Settings.max_upload_pixels == UPLOAD_LIMITS.max_pixels == 40_000_000
    assert Settings.max_upload_bytes == UPLOAD_LIMITS.max_bytes


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("limits-catalog"), embedder)
    site, server = start_site(workspace, index_refresh_s=0)
    yield site
    server.stop()


def test_a_60_megapixel_photo_gets_the_same_honest_refusal_on_the_form_and_api_search(site) -> None:
    form, search = _post_to_form_and_api_search(site, png_header_only(10_000, 6_000))  # 60 MP, a few hundred bytes
    assert form.status_code == search.status_code == 413
    detail = search.json()
    message = detail.get("detail") or detail.get("message")
    for text in (form.text, message):
        assert "60 megapixels" in text and "the limit is 40 megapixels" in text
        assert "larger than the limit of" not in text  # the byte limit's message
    assert " MB" not in message
    started = time.monotonic()
    ok = site.client()
    try:  # 39 MP is under the limit: refused for its damaged data (400), not for its size
        under = ok.http.post("/api/search", files={"photo": ("ok.png", png_header_only(6_500, 6_000), "image/png")})
    finally:
        ok.close()
    assert under.status_code == 400 and time.monotonic() - started < 60


def test_a_lower_pixel_limit_in_the_settings_reaches_the_form_and_api_search(tiny, store, tmp_path) -> None:
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path / "catalog", embedder)
    site, server = start_site(workspace, index_refresh_s=0, max_upload_pixels=2_000_000)
    try:  # 3 megapixels: under the default, over this site's limit
        form, search = _post_to_form_and_api_search(site, png_header_only(2_000, 1_500))
    finally:
        server.stop()
    assert form.status_code == search.status_code == 413
    assert "the limit is 2 megapixels" in search.json()["detail"]


def _post_to_form_and_api_search(site, photo: bytes, named: tuple[str, str] = ("big.png", "image/png")):  # type: ignore[no-untyped-def]
    """The same photo (file name, type) sent to the customer's request form and to `/api/search`:
    (form, search) responses."""
    name, kind = named
    browser = site.client()
    try:
        form = browser.post(
            "/requests",
            {"email": "c@example.com", "words": "", "budget": ""},
            files={"photo": (name, photo, kind)},
        )
        search = browser.http.post("/api/search", files={"photo": (name, photo, kind)})
    finally:
        browser.close()
    return form, search


def _phone_jpeg(width: int = 8064, height: int = 6048) -> bytes:
    """A 48-megapixel camera JPEG of a few MB at most: a product on a plain table, as a phone takes it."""
    image = Image.new("RGB", (width, height), (214, 206, 190))
    image.paste((40, 90, 160), (width // 3, height // 4, 2 * width // 3, 3 * height // 4))
    return _encode(image, "JPEG", quality=85)


def test_a_48_megapixel_phone_jpeg_is_accepted_where_a_48_megapixel_png_is_not(site) -> None:
    """The pixel limit counts the pixels decoded: a JPEG is decoded scaled down (DCT scaling, as
    ingest and search do), a PNG cannot be, so only the PNG is over the 40-megapixel limit."""
    photo = _phone_jpeg()
    assert len(photo) < UPLOAD_LIMITS.max_bytes
    form, search = _post_to_form_and_api_search(site, photo, ("IMG_0001.jpg", "image/jpeg"))
    assert form.status_code == 303 and form.headers["location"].startswith("/r/")
    assert search.status_code == 200 and search.json()["results"]
    refused_form, refused_search = _post_to_form_and_api_search(site, png_header_only(8064, 6048))
    assert refused_form.status_code == refused_search.status_code == 413
    assert "49 megapixels" in refused_search.json()["detail"]

"""`POST /api/search` over a real HTTP server (uvicorn) with a real client (httpx)."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from catalogs import product_photo
from images import png_header_only
from PIL import Image
from search_catalog import build_workspace, live_server

from api.controllers.search import MAX_BODY_BYTES
from api.search_app import create_search_app
from catalog.db import make_engine, session_factory
from catalog.search_service import SearchService
from vision.embedder import open_embedder


@pytest.fixture(scope="module")
def server(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    workspace = build_workspace(tmp_path_factory.mktemp("api-catalog"), open_embedder("test-tiny", "onnx", store))
    engine = make_engine(workspace.database_url)
    service = SearchService(workspace, session_factory(engine), "test-tiny", window_ms=10.0, max_batch=8)
    with live_server(create_search_app(service)) as url:
        yield url, service
    service.close()
    engine.dispose()


def _post(url: str, files=None, data=None, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/api/search", files=files, data=data, timeout=30, **kwargs)


def _photo_file(number: int):
    return {"photo": (f"p{number}.jpg", product_photo(number), "image/jpeg")}


def test_photo_search_ranks_the_product_first(server) -> None:
    url, service = server
    response = _post(url, files=_photo_file(12), data={"k": "4"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 4 == len(body["results"])
    assert body["model"] == service.model_id
    first = body["results"][0]
    assert first["sku"] == "SKU-00012"
    assert first["score"] > 0.99
    assert set(first) >= {"product_id", "vendor", "title", "price", "currency", "category", "in_stock", "image_id"}


def test_text_search_with_filters(server) -> None:
    url, _ = server
    response = _post(
        url,
        files={"unused": ("", b"", "application/octet-stream")},  # a form whose file input was left empty
        data={"text": "blue lamp", "category": ["lamps", "mugs"], "vendor": "acme", "in_stock": "true", "k": "30"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results
    assert all(r["category"] in {"lamps", "mugs"} and r["vendor"] == "acme" and r["in_stock"] for r in results)
    priced = _post(url, data={"text": "blue lamp", "min_price": "30", "max_price": "50.5", "k": "30"}).json()
    assert priced["results"]
    assert all(30 <= float(r["price"]) <= 50.5 for r in priced["results"])


def test_crop_and_photo_with_text(server) -> None:
    url, _ = server
    left, right = Image.open(io.BytesIO(product_photo(8))), Image.open(io.BytesIO(product_photo(50)))
    pair = Image.new("RGB", (left.width + right.width, left.height))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    out = io.BytesIO()
    pair.save(out, format="PNG")
    files = {"photo": ("pair.png", out.getvalue(), "image/png")}
    right_half = _post(url, files=files, data={"crop": "0.5, 0, 0.5, 1", "k": "3"}).json()
    assert right_half["results"][0]["sku"] == "SKU-00050"
    refined = _post(url, files=files, data={"crop": "0.5,0,0.5,1", "text": "mug", "text_weight": "0.3"})
    assert refined.status_code == 200
    assert [r["score"] for r in refined.json()["results"]] != [r["score"] for r in right_half["results"]]


@pytest.mark.parametrize(
    ("data", "files", "detail"),
    [
        ({}, None, "photo, some words"),
        ({"text": "mug", "k": "many"}, None, "whole number"),
        ({"text": "mug", "k": "0"}, None, "k must be"),
        ({"text": "mug", "min_price": "cheap"}, None, "must be a number"),
        ({"text": "mug", "min_price": "9", "max_price": "3"}, None, "above max_price"),
        ({"text": "mug", "in_stock": "maybe"}, None, "true or false"),
        ({"crop": "0,0,1"}, {"photo": ("a.jpg", product_photo(1), "image/jpeg")}, "four numbers"),
        ({"crop": "0.5,0.5,0.9,0.2"}, {"photo": ("a.jpg", product_photo(1), "image/jpeg")}, "inside the image"),
        ({"text": "mug", "crop": "0,0,0.5,0.5"}, None, "crop needs a photo"),
        ({}, {"photo": ("a.jpg", product_photo(1)[:300], "image/jpeg")}, "damaged"),
    ],
)
def test_bad_requests_are_400_with_a_reason(server, data, files, detail) -> None:
    url, _ = server
    response = _post(url, files=files, data=data)
    assert response.status_code == 400, response.text
    assert detail in response.json()["detail"]


def test_unsupported_bodies_and_files_are_415(server) -> None:
    url, _ = server
    as_json = httpx.post(f"{url}/api/search", json={"text": "mug"}, timeout=30)
    assert as_json.status_code == 415
    assert "multipart/form-data" in as_json.json()["detail"]
    not_image = _post(url, files={"photo": ("notes.txt", b"just some words, not a photo", "text/plain")})
    assert not_image.status_code == 415
    assert "not an image" in not_image.json()["detail"]


def test_too_large_uploads_are_413(server) -> None:
    url, _ = server
    bomb = _post(url, files={"photo": ("bomb.png", png_header_only(20_000, 20_000), "image/png")})
    assert bomb.status_code == 413
    assert "too many pixels" in bomb.json()["detail"]
    huge = _post(url, files={"photo": ("huge.jpg", b"\xff\xd8" + b"\0" * MAX_BODY_BYTES, "image/jpeg")})
    assert huge.status_code == 413


def test_concurrent_requests_share_inference_calls(server) -> None:
    url, service = server
    stats = service.embedder.images.stats
    batches_before, items_before = stats.batches, stats.items

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/api/search", files=_photo_file(n), data={"k": "2"}) for n in range(16))
            )

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 16
    assert [r.json()["results"][0]["sku"] for r in responses] == [f"SKU-{n:05d}" for n in range(16)]
    assert stats.items - items_before == 16
    assert stats.batches - batches_before < 16, "no two requests were embedded together"

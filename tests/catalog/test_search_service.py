"""The query path over a real ingested catalog: photo, words, both, a crop, filters, bad input."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from catalogs import make_rows, product_photo, write_csv
from PIL import Image
from search_catalog import build_workspace

from catalog.db import make_engine, session_factory
from catalog.search_service import QueryInput, SearchService
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from index.filters import SearchFilter
from vision.embedder import l2_normalise, open_embedder
from vision.errors import ImageRejected


def _catalog_photo(number: int) -> bytes:
    """The photo `catalogs.write_photos` gives row `number`."""
    return product_photo(number)


@pytest.fixture(scope="module")
def service(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    workspace = build_workspace(tmp_path_factory.mktemp("search-catalog"), open_embedder("test-tiny", "onnx", store))
    engine = make_engine(workspace.database_url)
    service = SearchService(workspace, session_factory(engine), "test-tiny", window_ms=2.0, max_batch=8)
    yield service
    service.close()
    engine.dispose()


def _search(service: SearchService, query: QueryInput):
    return asyncio.run(service.search(query))


def test_photo_finds_its_own_product_first(service) -> None:
    for number in (3, 17, 45):
        hits = _search(service, QueryInput(image_bytes=_catalog_photo(number), k=5))
        assert hits[0].sku == f"SKU-{number:05d}"
        assert hits[0].score > 0.99
        assert len(hits) == 5
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert len({h.product_id for h in hits}) == 5


def test_text_query_uses_the_text_tower(service) -> None:
    hits = _search(service, QueryInput(text="  a round red mug  ", k=7))
    assert len(hits) == 7
    expected = service.embedder.embedder.embed_texts(["a round red mug"])[0]
    vector = asyncio.run(service.query_vector(QueryInput(text="a round red mug")))
    np.testing.assert_allclose(vector, expected, atol=1e-5)
    assert hits[0].score == pytest.approx(max(h.score for h in hits))


def test_photo_and_text_is_the_renormalised_weighted_sum(service) -> None:
    photo = _catalog_photo(5)
    image_only = asyncio.run(service.query_vector(QueryInput(image_bytes=photo)))
    text_only = asyncio.run(service.query_vector(QueryInput(text="green lamp")))
    both = asyncio.run(service.query_vector(QueryInput(image_bytes=photo, text="green lamp", text_weight=0.4)))
    np.testing.assert_allclose(both, l2_normalise((0.6 * image_only + 0.4 * text_only)[None])[0], atol=1e-5)
    assert abs(float(np.linalg.norm(both)) - 1) < 1e-5
    hits = _search(service, QueryInput(image_bytes=photo, text="green lamp", text_weight=0.4, k=5))
    photo_hits = _search(service, QueryInput(image_bytes=photo, k=5))
    assert [h.score for h in hits] != [h.score for h in photo_hits]
    weightless = _search(service, QueryInput(image_bytes=photo, text="green lamp", text_weight=0.0, k=5))
    assert [h.product_id for h in weightless] == [h.product_id for h in photo_hits]


def test_crop_selects_the_product_in_that_region(service) -> None:
    left, right = Image.open(io.BytesIO(_catalog_photo(8))), Image.open(io.BytesIO(_catalog_photo(31)))
    both = Image.new("RGB", (left.width + right.width, left.height))
    both.paste(left, (0, 0))
    both.paste(right, (left.width, 0))
    out = io.BytesIO()
    both.save(out, format="PNG")  # lossless, so each half is exactly the catalog photo's pixels
    pair = out.getvalue()
    left_hits = _search(service, QueryInput(image_bytes=pair, crop=(0.0, 0.0, 0.5, 1.0), k=3))
    right_hits = _search(service, QueryInput(image_bytes=pair, crop=(0.5, 0.0, 0.5, 1.0), k=3))
    assert left_hits[0].sku == "SKU-00008"
    assert right_hits[0].sku == "SKU-00031"


def test_filters_are_honoured(service) -> None:
    photo = _catalog_photo(2)
    cases = {
        "category": (SearchFilter.of(categories=["lamps"]), lambda h: h.category == "lamps"),
        "vendor": (SearchFilter.of(vendors=["globex"]), lambda h: h.vendor == "globex"),
        "in stock": (SearchFilter.of(in_stock=False), lambda h: not h.in_stock),
        "price": (SearchFilter.of(min_price=20, max_price=40), lambda h: 20 <= float(h.price) <= 40),
    }
    unfiltered = _search(service, QueryInput(image_bytes=photo, k=10))
    assert any(not ok(h) for _, ok in cases.values() for h in unfiltered), "the filters must have something to drop"
    for name, (search_filter, ok) in cases.items():
        hits = _search(service, QueryInput(image_bytes=photo, search_filter=search_filter, k=10))
        assert hits, name
        assert all(ok(h) for h in hits), name


def test_bad_image_is_rejected(service, tmp_path: Path) -> None:
    with pytest.raises(ImageRejected, match="not an image"):
        _search(service, QueryInput(image_bytes=b"GIF89a this is not really a gif"))
    with pytest.raises(ImageRejected, match="empty"):
        _search(service, QueryInput(image_bytes=b""))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (QueryInput(), "photo, some words"),
        (QueryInput(text="   "), "photo, some words"),
        (QueryInput(text="mug", k=0), "k must be"),
        (QueryInput(text="mug", text_weight=1.5), "text_weight"),
        (QueryInput(text="mug", crop=(0, 0, 0.5, 0.5)), "crop needs a photo"),
        (QueryInput(image_bytes=b"x", crop=(0.2, 0.2, 0.0, 0.5)), "width and height"),
    ],
)
def test_bad_queries_are_value_errors(service, query: QueryInput, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _search(service, query)


def test_refresh_index_sees_a_later_ingest(tiny, store, tmp_path: Path) -> None:
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = Workspace(tmp_path / "home")
    (tmp_path / "first").mkdir()
    (tmp_path / "later").mkdir()
    ingest_catalog(write_csv(tmp_path / "first" / "c.csv", make_rows(5)), "acme", embedder, workspace)
    engine = make_engine(workspace.database_url)
    service = SearchService(workspace, session_factory(engine), "test-tiny")
    try:
        query = QueryInput(image_bytes=_catalog_photo(70), k=3)
        ingest_catalog(write_csv(tmp_path / "later" / "c.csv", make_rows(3, start=70)), "acme", embedder, workspace)
        assert "SKU-00070" not in [h.sku for h in _search(service, query)]
        service.refresh_index()
        assert _search(service, query)[0].sku == "SKU-00070"
    finally:
        service.close()
        engine.dispose()

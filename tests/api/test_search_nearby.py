"""`POST /api/search` with `near`, `within_km` and `in_stock_nearby`, over a real server (the whole app):
stores nearest first on every hit, full pages when only products in stock nearby may come back, and
422 naming the field for a place or radius that cannot be used."""

from __future__ import annotations

import httpx
import pytest
from catalogs import product_photo
from nearby_support import LYON, PARIS, add_store, product_id
from webapp import build_catalog, start_site

from vision.embedder import open_embedder

#: Paris store A ~1.2 km from PARIS, B ~9.3 km; Lyon ~390 km away.
LOUVRE = (48.8606, 2.3376)
DEFENSE = (48.8918, 2.2361)
IN_PARIS = list(range(0, 24, 2))  # acme rows 0, 2, ..., 22


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("search-nearby"), embedder)
    site, server = start_site(workspace, rate_limits="off")
    ids = {row: product_id(site.sessions, "acme", f"SKU-{row:05d}") for row in range(30)}
    add_store(site.sessions, "acme", "LOUVRE", LOUVRE, {ids[r]: 2 for r in IN_PARIS[:6]} | {ids[25]: 0})
    add_store(site.sessions, "acme", "DEFENSE", DEFENSE, {ids[r]: 5 for r in IN_PARIS[3:]})
    add_store(site.sessions, "acme", "LYON", LYON, {ids[r]: 1 for r in range(30)})
    yield site, ids
    server.stop()


def _search(site, **data) -> httpx.Response:  # type: ignore[no-untyped-def]
    files = {"photo": ("p.jpg", product_photo(4), "image/jpeg")}
    return httpx.post(f"{site.url}/api/search", files=files, data=data, timeout=30)


def test_hits_list_stores_nearest_first(site) -> None:
    site, ids = site
    response = _search(site, near=f"{PARIS[0]},{PARIS[1]}", k="40")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 40  # the whole catalog: both vendors
    by_id = {hit["product_id"]: hit for hit in results}
    for hit in results:
        distances = [s["distance_km"] for s in hit["stores"]]
        assert distances == sorted(distances)
        assert all(set(s) >= {"code", "name", "distance_km", "quantity", "open_now"} for s in hit["stores"])
        assert all(s["quantity"] > 0 for s in hit["stores"])
    eight = by_id[ids[8]]
    assert [s["code"] for s in eight["stores"]] == ["LOUVRE", "DEFENSE", "LYON"]
    assert [s["quantity"] for s in eight["stores"]] == [2, 5, 1]
    assert eight["stores"][0]["distance_km"] == pytest.approx(1.2, abs=0.2)
    assert eight["stores"][0]["open_now"] is True  # always open
    assert [s["code"] for s in by_id[ids[25]]["stores"]] == ["LYON"]  # quantity 0 at the Louvre: not listed
    assert sum(1 for hit in results if hit["stores"]) == 30  # globex has no stores
    plain = _search(site, k="3").json()["results"]
    assert all("stores" not in hit for hit in plain)
    close = _search(site, near=f"{PARIS[0]},{PARIS[1]}", within_km="5", k="10").json()["results"]
    assert all(s["distance_km"] <= 5 for hit in close for s in hit["stores"])


def test_in_stock_nearby_keeps_pages_full(site) -> None:
    site, ids = site
    allowed = {ids[r] for r in IN_PARIS}
    near = f"{PARIS[0]},{PARIS[1]}"
    page = _search(site, near=near, in_stock_nearby="true", k="8").json()["results"]
    assert len(page) == 8, "a full page of products in stock within 10 km"
    assert {hit["product_id"] for hit in page} <= allowed
    assert page[0]["product_id"] == ids[4]  # the photo's own product is in stock nearby
    everything = _search(site, near=near, in_stock_nearby="true", k="50").json()["results"]
    assert {hit["product_id"] for hit in everything} == allowed  # all 12, nothing in Lyon
    assert all(hit["stores"] and hit["stores"][0]["distance_km"] <= 10 for hit in everything)
    tight = _search(site, near=near, in_stock_nearby="true", within_km="2", k="50").json()["results"]
    assert {hit["product_id"] for hit in tight} == {ids[r] for r in IN_PARIS[:6]}
    lyon = _search(site, near=f"{LYON[0]},{LYON[1]}", in_stock_nearby="true", k="50").json()["results"]
    assert len(lyon) == 30  # every acme product, and no globex one


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"near": "48.8,abc"}, "near"),
        ({"near": "91,2"}, "near"),
        ({"near": "48.8,200"}, "near"),
        ({"near": "48.8,2.3", "within_km": "0"}, "within_km"),
        ({"near": "48.8,2.3", "within_km": "-3"}, "within_km"),
        ({"near": "48.8,2.3", "within_km": "far"}, "within_km"),
        ({"near": "48.8,2.3", "within_km": "5000"}, "within_km"),
        ({"in_stock_nearby": "true"}, "near"),
        ({"near": "48.8,2.3", "in_stock_nearby": "maybe"}, "in_stock_nearby"),
    ],
)
def test_refusals_name_the_field(site, data: dict[str, str], field: str) -> None:
    site, _ = site
    response = _search(site, **data)
    assert response.status_code == 422, response.text
    assert f"'{field}'" in response.json()["detail"]

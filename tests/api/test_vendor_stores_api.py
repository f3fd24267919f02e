"""Stores and stock per store over the JSON API and the /vendor/stores pages, against a real server:
`PUT /api/vendor/stores/{code}` (201 then 200, 422 naming the field), `GET /api/vendor/stores`,
`POST /api/vendor/stock` as a CSV body and as multipart, snapshot and delta; isolation between
vendors (404) and anonymous callers (401); the page's form keeping what was typed."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select
from webapp import Browser, bearer, staffed_site

from catalog.db import Product, Store, StoreStock
from vision.embedder import open_embedder

PASSWORD = "correct horse battery"
BERLIN = {
    "name": "Berlin Mitte",
    "address": "Rosenthaler Str. 1",
    "postcode": "10119",
    "city": "Berlin",
    "country": "DE",
    "lat": 52.529,
    "lon": 13.401,
    "opening_hours": "Mo-Fr 09:00-20:00; Sa 10:00-18:00; Su closed",
    "phone": "030 901820",
    "timezone": "Europe/Berlin",
}


STAFF = (("acme-stores", "vendor", "acme"), ("globex-stores", "vendor", "globex"))


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    folder = tmp_path_factory.mktemp("vendor-stores-api")
    with staffed_site(folder, embedder, PASSWORD, STAFF, rate_limits="off") as site:
        yield site


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def test_anonymous_callers_get_401(http) -> None:
    assert http.get("/api/vendor/stores").status_code == 401
    assert http.get("/api/vendor/stores/B-01").status_code == 401
    assert http.put("/api/vendor/stores/B-01", json=BERLIN).status_code == 401
    sent = http.post("/api/vendor/stock", content=b"store,sku,quantity\n", headers={"Content-Type": "text/csv"})
    assert sent.status_code == 401


def test_put_creates_then_updates_and_refusals_name_the_field(http) -> None:
    acme = bearer(http, "acme-stores", PASSWORD)
    created = http.put("/api/vendor/stores/API-1", json=BERLIN, headers=acme)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["code"] == "API-1" and body["phone"] == "+4930901820"
    assert body["opening_hours"] == "Mo-Fr 09:00-20:00; Sa 10:00-18:00; Su closed"
    updated = http.put("/api/vendor/stores/API-1", json={**BERLIN, "name": "Mitte"}, headers=acme)
    assert updated.status_code == 200 and updated.json()["name"] == "Mitte"
    assert http.get("/api/vendor/stores/API-1", headers=acme).json()["name"] == "Mitte"
    for change, field in (
        ({"lat": 120}, "lat"),
        ({"opening_hours": "Mo 9-5"}, "opening_hours"),
        ({"phone": "12"}, "phone"),
    ):
        refused = http.put("/api/vendor/stores/API-2", json={**BERLIN, **change}, headers=acme)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == field
        assert field in refused.json()["detail"]
    missing = http.put("/api/vendor/stores/API-2", json={"name": "No position"}, headers=acme)
    assert missing.status_code == 400 and "lat" in missing.text
    assert http.get("/api/vendor/stores/API-2", headers=acme).status_code == 404


def test_stock_as_csv_body_and_multipart_with_rejects(site, http) -> None:
    acme = bearer(http, "acme-stores", PASSWORD)
    assert http.put("/api/vendor/stores/S-1", json=BERLIN, headers=acme).status_code in (200, 201)
    assert http.put("/api/vendor/stores/S-2", json={**BERLIN, "name": "Two"}, headers=acme).status_code in (200, 201)
    csv_body = (
        "store,sku,quantity\nS-1,SKU-00001,3\nS-1,SKU-00002,1\nS-2,SKU-00001,4\n"
        "S-1,SKU-99999,1\nS-1,SKU-00003,-1\nZZ,SKU-00001,1\n"
    )
    sent = http.post("/api/vendor/stock", content=csv_body, headers={**acme, "Content-Type": "text/csv"})
    assert sent.status_code == 200, sent.text
    result = sent.json()
    assert (result["mode"], result["applied"], result["rejected"]) == ("snapshot", 3, 3)
    assert [r["row"] for r in result["rejects"]] == [6, 4, 5] or sorted(r["row"] for r in result["rejects"]) == [
        4,
        5,
        6,
    ]
    reasons = " ".join(r["reason"] for r in result["rejects"])
    assert "SKU-99999" in reasons and "negative" in reasons and "'ZZ'" in reasons
    # A multipart delta: S-1's SKU-00002 set to 0, SKU-00001 untouched.
    sent = http.post(
        "/api/vendor/stock?mode=delta",
        files={"file": ("stock.csv", b"store,sku,quantity\nS-1,SKU-00002,0\n", "text/csv")},
        headers=acme,
    )
    assert sent.status_code == 200 and sent.json()["applied"] == 1, sent.text
    # A snapshot of S-2 only: S-1 keeps its stock.
    sent = http.post(
        "/api/vendor/stock",
        content="store,sku,quantity\nS-2,SKU-00004,2\n",
        headers={**acme, "Content-Type": "text/csv"},
    )
    assert sent.json()["removed"] == 1
    with site.sessions() as session:
        rows = session.execute(
            select(Store.code, Product.sku, StoreStock.quantity)
            .join(Store, Store.id == StoreStock.store_id)
            .join(Product, Product.id == StoreStock.product_id)
            .where(Store.code.in_(["S-1", "S-2"]))
        ).all()
    assert sorted(map(tuple, rows)) == [("S-1", "SKU-00001", 3), ("S-1", "SKU-00002", 0), ("S-2", "SKU-00004", 2)]
    bad_mode = http.post("/api/vendor/stock?mode=full", content="x", headers={**acme, "Content-Type": "text/csv"})
    assert bad_mode.status_code == 422 and bad_mode.json()["field"] == "mode"
    no_header = http.post("/api/vendor/stock", content="a,b\n1,2\n", headers={**acme, "Content-Type": "text/csv"})
    assert no_header.status_code == 422 and "quantity" in no_header.json()["detail"]
    wrong_type = http.post("/api/vendor/stock", json={"store": "S-1"}, headers=acme)
    assert wrong_type.status_code == 415
    # Bytes that are not UTF-8 and a NUL are those rows' rejects, shown with U+FFFD; the rest applies.
    odd = b"store,sku,quantity\nS-1,SKU-\xe900001,1\nS-1,SKU\x0000002,1\nS-2,SKU-00004,5\n"
    sent = http.post("/api/vendor/stock?mode=delta", content=odd, headers={**acme, "Content-Type": "text/csv"})
    assert sent.status_code == 200, sent.text
    assert (sent.json()["applied"], sent.json()["rejected"]) == (1, 2)
    assert [r["sku"] for r in sent.json()["rejects"]] == ["SKU-\ufffd00001", "SKU\ufffd00002"]


def test_one_vendor_cannot_see_or_touch_anothers_stores(http) -> None:
    acme, globex = bearer(http, "acme-stores", PASSWORD), bearer(http, "globex-stores", PASSWORD)
    assert http.put("/api/vendor/stores/ONLY-ACME", json=BERLIN, headers=acme).status_code == 201
    assert http.get("/api/vendor/stores/ONLY-ACME", headers=globex).status_code == 404
    listed = http.get("/api/vendor/stores", headers=globex).json()
    assert "ONLY-ACME" not in [s["code"] for s in listed["stores"]]
    assert "ONLY-ACME" in [s["code"] for s in http.get("/api/vendor/stores?q=only", headers=acme).json()["stores"]]
    # globex's stock file cannot name acme's store, nor acme's products.
    sent = http.post(
        "/api/vendor/stock?mode=delta",
        content="store,sku,quantity\nONLY-ACME,SKU-00030,1\n",
        headers={**globex, "Content-Type": "text/csv"},
    )
    assert sent.json()["applied"] == 0 and "no store" in sent.json()["rejects"][0]["reason"]
    # The same code at globex is globex's own store, created (201), not acme's updated.
    assert (
        http.put("/api/vendor/stores/ONLY-ACME", json={**BERLIN, "name": "Globex"}, headers=globex).status_code == 201
    )
    assert http.get("/api/vendor/stores/ONLY-ACME", headers=acme).json()["name"] == "Berlin Mitte"


def test_the_page_form_keeps_what_was_typed_and_saves(site) -> None:
    browser = Browser(site.url)
    try:
        assert browser.login("acme-stores", PASSWORD).status_code in (302, 303)
        listing = browser.get("/vendor/stores")
        assert listing.status_code == 200 and 'data-testid="store-form"' in listing.text
        typed = {
            "code": "PAGE-1",
            "name": "Kept name",
            "lat": "95",
            "lon": "13.4",
            "opening_hours": "Mo 9-5",
            "timezone": "UTC",
        }
        refused = browser.post("/vendor/stores", typed)
        assert refused.status_code == 422
        assert 'value="Kept name"' in refused.text and "Mo 9-5" in refused.text
        assert re.search(r'data-testid="store-lat-error">[^<]*between -90 and 90', refused.text)
        assert 'data-testid="store-opening_hours-error"' in refused.text
        saved = browser.post("/vendor/stores", {**typed, "lat": "52.5", "opening_hours": "mo-fr 9:00-18:00"})
        assert saved.status_code == 303 and saved.headers["location"] == "/vendor/stores/PAGE-1"
        shown = browser.get("/vendor/stores/PAGE-1")
        assert 'data-testid="store-hours">Mo-Fr 09:00-18:00; Sa,Su closed' in shown.text
        snapshot = browser.post(
            "/vendor/stores/stock",
            {"mode": "snapshot"},
            files={"file": ("s.csv", b"store,sku,quantity\nPAGE-1,SKU-00001,2\n")},
        )
        assert snapshot.status_code == 422 and 'data-field="confirm_snapshot"' in snapshot.text
        confirmed = browser.post(
            "/vendor/stores/stock",
            {"mode": "snapshot", "confirm_snapshot": "yes"},
            files={"file": ("s.csv", b"store,sku,quantity\nPAGE-1,SKU-00001,2\nPAGE-1,NOPE,1\n")},
        )
        assert confirmed.status_code == 200
        assert 'data-testid="stock-applied">1<' in confirmed.text and "NOPE" in confirmed.text
        assert 'data-testid="stock-quantity">2<' in browser.get("/vendor/stores/PAGE-1?q=00001").text
        stores_csv = b"code,name,lat,lon\nPAGE-2,Second,48.1,11.5\nPAGE-3,,1,1\n"
        imported = browser.post("/vendor/stores/import", files={"file": ("stores.csv", stores_csv)})
        assert imported.status_code == 200 and 'data-testid="stores-result"' in imported.text
        assert "1 stores added" in imported.text and "name is required" in imported.text
        assert browser.get("/vendor/stores/NOT-MINE").status_code == 404
    finally:
        browser.close()


def test_one_stock_import_per_vendor_at_a_time(site, http) -> None:
    """While an import of a vendor's stock runs (here: its lock held, as by another worker process),
    another is refused at once with a 409 saying so, on the API and on the page, and changes
    nothing; another vendor's import goes ahead; once it ends, the file goes through."""
    from catalog.db import Vendor
    from catalog_ingest.stock import one_import_per_vendor

    acme, globex = bearer(http, "acme-stores", PASSWORD), bearer(http, "globex-stores", PASSWORD)
    assert http.put("/api/vendor/stores/S-9", json=BERLIN, headers=acme).status_code in (200, 201)
    body = {"content": "store,sku,quantity\nS-9,SKU-00005,7\n", "headers": {**acme, "Content-Type": "text/csv"}}
    with site.sessions() as session:
        acme_id = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
    with one_import_per_vendor(site.settings.workspace, acme_id):
        busy = http.post("/api/vendor/stock?mode=delta", **body)
        assert busy.status_code == 409 and "Another stock import" in busy.json()["detail"], busy.text
        page = Browser(site.url)
        try:
            assert page.login("acme-stores", PASSWORD).status_code in (302, 303)
            refused = page.post(
                "/vendor/stores/stock",
                data={"mode": "delta"},
                files={"file": ("stock.csv", body["content"].encode(), "text/csv")},
            )
            assert refused.status_code == 409 and "Another stock import" in refused.text
        finally:
            page.close()
        other = http.post(
            "/api/vendor/stock?mode=delta",
            content="store,sku,quantity\n",
            headers={**globex, "Content-Type": "text/csv"},
        )
        assert other.status_code == 200, other.text
    with site.sessions() as session:
        assert session.scalars(select(StoreStock).join(Store).where(Store.code == "S-9")).all() == []
    sent = http.post("/api/vendor/stock?mode=delta", **body)
    assert sent.status_code == 200 and sent.json()["applied"] == 1, sent.text

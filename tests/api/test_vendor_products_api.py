"""The vendor's products over the JSON API, against a real server: a page of products with the total
and counts, `q`, paging, edits of price, stock and active that `POST /api/search` sees at once, a bad
price refused as 422 naming `price`, and one vendor's products invisible to another (404) and to an
anonymous caller (401)."""

from __future__ import annotations

import httpx
import pytest
from catalogs import product_photo
from sqlalchemy import select
from webapp import NoMail, bearer, staffed_site

from catalog.db import Product
from catalog.ids import product_id
from vision.embedder import open_embedder
from workflow import claims, offers_service, vendor_products
from workflow.errors import Invalid
from workflow.models import Candidate, CustomerRequest, User

PASSWORD = "correct horse battery"


STAFF = (("acme-shop", "vendor", "acme"), ("globex-shop", "vendor", "globex"), ("alice", "operator"))


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    folder = tmp_path_factory.mktemp("vendor-products-api")
    with staffed_site(folder, embedder, PASSWORD, STAFF, rate_limits="off") as site:
        yield site


@pytest.fixture(scope="module")
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def acme(http) -> dict[str, str]:
    return bearer(http, "acme-shop", PASSWORD)


@pytest.fixture(scope="module")
def globex(http) -> dict[str, str]:
    return bearer(http, "globex-shop", PASSWORD)


def _search(http: httpx.Client, seed: int, **data: str) -> list[dict]:
    answer = http.post(
        "/api/search", files={"photo": ("p.jpg", product_photo(seed), "image/jpeg")}, data={"k": "10", **data}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_a_page_of_products_with_total_counts_and_search(http, acme, site, monkeypatch) -> None:
    monkeypatch.setattr(vendor_products, "VENDOR_PAGE", 7)
    first = http.get("/api/vendor/products", headers=acme)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["total"], body["page"], body["pages"], body["page_size"], len(body["products"])) == (30, 1, 5, 7, 7)
    product = body["products"][0]
    assert set(product) >= {"id", "sku", "title", "price", "currency", "in_stock", "active", "counts", "image_url"}
    assert product["counts"] == {"candidate": 0, "offered": 0, "sold": 0} and product["image_url"].startswith(
        "/images/"
    )
    assert http.get(product["image_url"]).status_code == 200
    second = http.get("/api/vendor/products", params={"page": 2}, headers=acme).json()
    assert {p["id"] for p in body["products"]}.isdisjoint(p["id"] for p in second["products"])
    assert http.get("/api/vendor/products", params={"page": 99}, headers=acme).json()["page"] == 5
    found = http.get("/api/vendor/products", params={"q": "sku-00003"}, headers=acme).json()
    assert found["total"] == 1 and found["products"][0]["sku"] == "SKU-00003"
    assert http.get("/api/vendor/products", params={"q": "%"}, headers=acme).json()["total"] == 0  # no wildcards

    # Counts: the photo request's instant matches made candidates of acme's products.
    made = http.post("/api/requests", data={"email": "c@example.com"}, files={"photo": ("p.jpg", product_photo(4))})
    assert made.status_code == 201, made.text
    with site.sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).order_by(CustomerRequest.id.desc()).limit(1))
        listed = set(session.scalars(select(Candidate.product_id).where(Candidate.request_id == request_id)))
    assert product_id("acme", "SKU-00004") in listed
    four = http.get("/api/vendor/products", params={"q": "SKU-00004"}, headers=acme).json()["products"][0]
    assert four["counts"]["candidate"] == 1


def test_price_edit_is_seen_by_a_max_price_search_and_a_bad_price_is_422(http, acme) -> None:
    pid = product_id("acme", "SKU-00008")  # 18.50 EUR
    assert "SKU-00008" not in [r["sku"] for r in _search(http, 8, max_price="15")]
    bad = http.patch(f"/api/vendor/products/{pid}", json={"price": "twelve"}, headers=acme)
    assert bad.status_code == 422 and bad.json()["field"] == "price" and "price" in bad.json()["detail"]
    assert http.patch(f"/api/vendor/products/{pid}", json={"price": 0}, headers=acme).status_code == 422
    assert http.patch(f"/api/vendor/products/{pid}", json={}, headers=acme).status_code == 422
    edited = http.patch(f"/api/vendor/products/{pid}", json={"price": "12.40"}, headers=acme)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["price"], edited.json()["currency"]) == ("12.40", "EUR")
    hits = _search(http, 8, max_price="15")
    assert hits[0]["sku"] == "SKU-00008" and hits[0]["price"] == "12.40"


def test_stock_edit_reaches_the_in_stock_filter(http, acme) -> None:
    pid = product_id("acme", "SKU-00009")
    assert _search(http, 9, in_stock="true")[0]["sku"] == "SKU-00009"
    edited = http.patch(f"/api/vendor/products/{pid}", json={"in_stock": False}, headers=acme)
    assert edited.status_code == 200 and edited.json()["in_stock"] is False
    assert "SKU-00009" not in [r["sku"] for r in _search(http, 9, in_stock="true")]


def test_deactivated_leaves_search_and_comes_back(http, acme) -> None:
    pid = product_id("acme", "SKU-00012")
    assert _search(http, 12)[0]["sku"] == "SKU-00012"
    made = http.post("/api/requests", data={"email": "d@example.com"}, files={"photo": ("p.jpg", product_photo(12))})
    token = made.json()["token"]
    assert http.get(f"/api/requests/{token}").json()["instant_matches"][0]["product_id"] == pid
    off = http.patch(f"/api/vendor/products/{pid}", json={"active": False}, headers=acme)
    assert off.status_code == 200 and off.json()["active"] is False
    hits = _search(http, 12)
    assert "SKU-00012" not in [r["sku"] for r in hits] and len(hits) == 10  # the page stays full
    listed = http.get("/api/vendor/products", params={"q": "SKU-00012"}, headers=acme).json()["products"]
    assert listed[0]["active"] is False  # still the vendor's, just not searchable
    matches = http.get(f"/api/requests/{token}").json()["instant_matches"]
    assert matches and pid not in [m["product_id"] for m in matches]  # gone from stored matches too
    on = http.patch(f"/api/vendor/products/{pid}", json={"active": True}, headers=acme)
    assert on.status_code == 200 and on.json()["active"] is True
    assert _search(http, 12)[0]["sku"] == "SKU-00012"


def test_another_vendors_products_are_404_and_anonymous_is_401(http, acme, globex, site) -> None:
    theirs = product_id("globex", "SKU-00031")
    assert http.get(f"/api/vendor/products/{theirs}", headers=acme).status_code == 404
    assert http.patch(f"/api/vendor/products/{theirs}", json={"active": False}, headers=acme).status_code == 404
    assert http.get(f"/api/vendor/products/{theirs}", headers=globex).status_code == 200
    assert http.get(f"/api/vendor/products/{'9' * 25}", headers=acme).status_code == 404  # beyond 64 bits
    assert http.patch(f"/api/vendor/products/{'9' * 25}", json={"in_stock": True}, headers=acme).status_code == 404
    listed = http.get("/api/vendor/products", headers=globex).json()
    assert listed["total"] == 10 and all(p["sku"] >= "SKU-00030" for p in listed["products"])
    with site.sessions() as session:
        assert session.get(Product, theirs).active is True
    assert http.get("/api/vendor/products").status_code == 401
    assert http.patch(f"/api/vendor/products/{theirs}", json={"active": False}).status_code == 401
    assert http.get("/api/vendor/products", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert http.get("/api/vendor/products", headers=bearer(http, "alice", PASSWORD)).status_code == 403  # not a vendor


def test_the_product_page_edits_with_clear_refusals_and_the_overview_counts(site, http) -> None:
    """The browser's forms: a bad price keeps what was typed (422 naming the field), deactivating
    needs the confirmation box, and the overview counts active and inactive products."""
    pid = product_id("acme", "SKU-00020")
    browser = site.client()
    assert browser.login("acme-shop", PASSWORD).status_code == 303
    page = browser.get(f"/vendor/products/{pid}")
    assert page.status_code == 200 and "SKU-00020" in page.text and 'data-testid="product-images"' in page.text
    assert browser.get(f"/vendor/products/{product_id('globex', 'SKU-00031')}").status_code == 404
    bad = browser.post(f"/vendor/products/{pid}/price", {"price": "12.5.5"})
    assert bad.status_code == 422 and 'data-field="price"' in bad.text and 'value="12.5.5"' in bad.text
    unconfirmed = browser.post(f"/vendor/products/{pid}/active", {"active": "no"})
    assert unconfirmed.status_code == 422 and 'data-field="confirm"' in unconfirmed.text
    with site.sessions() as session:
        assert session.get(Product, pid).active is True
    done = browser.post(f"/vendor/products/{pid}/active", {"active": "no", "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == f"/vendor/products/{pid}"
    assert "SKU-00020" not in [r["sku"] for r in _search(http, 20)]
    overview = browser.get("/vendor").text
    assert 'data-testid="count-inactive">1<' in overview and 'data-testid="count-active">29<' in overview
    assert browser.post(f"/vendor/products/{pid}/price", {"price": "1.299,00"}).status_code == 303
    assert browser.post(f"/vendor/products/{pid}/active", {"active": "yes", "confirm": "yes"}).status_code == 303
    assert _search(http, 20)[0]["price"] == "1299.00"
    browser.close()


def test_an_operator_cannot_offer_a_deactivated_product(http, acme, site) -> None:
    pid = product_id("acme", "SKU-00016")
    made = http.post("/api/requests", data={"email": "e@example.com"}, files={"photo": ("p.jpg", product_photo(16))})
    assert made.status_code == 201, made.text
    with site.sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).order_by(CustomerRequest.id.desc()).limit(1))
        alice = session.scalar(select(User).where(User.name == "alice"))
    claims.claim(site.sessions, request_id, alice, 600)
    assert http.patch(f"/api/vendor/products/{pid}", json={"active": False}, headers=acme).status_code == 200
    draft = offers_service.OfferDraft(pid, "20.00")
    with pytest.raises(Invalid, match="deactivated"):
        offers_service.send_offers(site.sessions, request_id, alice, [draft], 24, NoMail(), "/r/{token}")
    assert http.patch(f"/api/vendor/products/{pid}", json={"active": True}, headers=acme).status_code == 200
    assert offers_service.send_offers(site.sessions, request_id, alice, [draft], 24, NoMail(), "/r/{token}")

"""A customer's location over the JSON API and the request page, against a real server: a request
may carry `location` (a postcode or city, geocoded offline) or `near` ("lat,lon"); its matches and
offers then carry `stores` (nearest first: code, name, distance_km, quantity, open_now), an unknown
place is a 422 naming the field (and no request is made), "in stock within N km" on the page re-runs
the search with the nearby filter and keeps the page full, and an offer collectable at a store is
accepted with pickup: the order and the receipt name the store."""

from __future__ import annotations

import re

import httpx
import pytest
from catalogs import product_photo
from nearby_support import LYON, PARIS, add_store, product_id
from sqlalchemy import func, select
from webapp import bearer, build_catalog, start_site

from catalog.db import Store
from vision.embedder import open_embedder
from workflow import claims, offers_service, pickups
from workflow.models import CustomerRequest, User
from workflow.payments import APPROVED
from workflow.request_tokens import token_hash
from workflow.users import add_user

PASSWORD = "correct horse battery"


class NoMail:
    def send_template(self, *args: object, **kwargs: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("nearby-api"), embedder)
    site, server = start_site(workspace, rate_limits="off")
    add_user(site.sessions, "alice", "operator", PASSWORD)
    paris = {product_id(site.sessions, "acme", f"SKU-{i:05d}"): 3 for i in range(10)}
    lyon = {product_id(site.sessions, "acme", f"SKU-{i:05d}"): 5 for i in range(10, 20)}
    add_store(site.sessions, "acme", "PAR-1", PARIS, paris)
    add_store(site.sessions, "acme", "LYO-1", LYON, lyon)
    yield site
    server.stop()


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def _create(http: httpx.Client, row: int, **fields: str) -> httpx.Response:
    return http.post(
        "/api/requests",
        data={"email": "shopper@example.com", **fields},
        files={"photo": ("p.jpg", product_photo(row, size=200), "image/jpeg")},
    )


def _request_id(site, token: str) -> int:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))


def test_a_request_with_a_postcode_has_its_location_and_stores_on_every_match(site, http) -> None:
    made = _create(http, 3, location="75001")
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer["location"]["source"] == "api" and "Paris" in answer["location"]["label"]
    assert abs(answer["location"]["lat"] - PARIS[0]) < 0.05
    matches = answer["instant_matches"]
    assert matches and all("stores" in m for m in matches)
    in_paris = {product_id(site.sessions, "acme", f"SKU-{i:05d}") for i in range(10)}
    in_lyon = {product_id(site.sessions, "acme", f"SKU-{i:05d}") for i in range(10, 20)}
    seen = 0
    for match in matches:
        codes = [s["code"] for s in match["stores"]]
        if match["product_id"] in in_paris:
            seen += 1
            [store] = match["stores"]
            assert store["code"] == "PAR-1" and store["distance_km"] < 10
            assert (store["quantity"], store["open_now"]) == (3, True)
            assert set(store) >= {"code", "name", "distance_km", "quantity", "open_now"}
        elif match["product_id"] in in_lyon:
            assert codes == ["LYO-1"] and 380 < match["stores"][0]["distance_km"] < 410
        else:
            assert codes == []  # no store holds it
    assert seen, "the photo of acme's product 3 should match some products held in Paris"


def test_near_as_lat_lon_and_the_read_answer_carry_the_same(site, http) -> None:
    made = _create(http, 12, near=f"{LYON[0]},{LYON[1]}")
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    read = http.get(f"/api/requests/{token}").json()
    assert read["location"]["source"] == "api"
    lyon_hits = [m for m in read["instant_matches"] if m["stores"]]
    assert lyon_hits and all(m["stores"][0]["distance_km"] < 1 for m in lyon_hits if m["stores"][0]["code"] == "LYO-1")
    paris_hits = [m for m in lyon_hits if m["stores"][0]["code"] == "PAR-1"]
    assert all(m["stores"][0]["distance_km"] > 380 for m in paris_hits)


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"location": "Atlantis"}, "location"), ({"near": "95,2"}, "near"), ({"near": "paris"}, "near")],
)
def test_an_unknown_place_is_422_naming_the_field_and_makes_no_request(site, http, fields, field) -> None:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        before = session.scalar(select(func.count()).select_from(CustomerRequest))
    refused = _create(http, 4, **fields)
    assert refused.status_code == 422 and refused.json()["field"] == field, refused.text
    with site.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CustomerRequest)) == before


def test_without_a_location_there_are_no_stores(site, http) -> None:
    answer = _create(http, 5).json()
    assert answer["location"] is None
    assert all("stores" not in m for m in answer["instant_matches"])


def test_in_stock_within_n_km_keeps_the_page_full(site, http) -> None:
    token = _create(http, 25, location="Paris").json()["token"]
    page = http.get(f"/r/{token}", params={"within_km": "10"})
    assert page.status_code == 200
    filtered = re.findall(r'data-testid="nearby-match" data-product-id="(\d+)"', page.text)
    in_paris = {product_id(site.sessions, "acme", f"SKU-{i:05d}") for i in range(10)}
    assert len(filtered) == len(in_paris)  # all ten products held within 10 km, not the few in the top 12
    assert {int(p) for p in filtered} == in_paris
    bad = http.get(f"/r/{token}", params={"within_km": "lots"})
    assert bad.status_code == 200 and "within_km" in bad.text and 'data-testid="within-error"' in bad.text


def test_an_offer_with_a_pickup_store_is_accepted_for_pickup(site, http) -> None:
    made = _create(http, 2, location="75001").json()
    token, request_id = made["token"], _request_id(site, made["token"])
    product = product_id(site.sessions, "acme", "SKU-00002")
    with site.sessions() as session:
        alice = session.scalar(select(User).where(User.name == "alice"))
        paris_store = session.scalar(select(Store.id).where(Store.code == "PAR-1"))
    claims.claim(site.sessions, request_id, alice, 600)
    chosen = {product: paris_store}
    pickups.check_choices(site.sessions, chosen)
    [offer] = offers_service.send_offers(
        site.sessions,
        request_id,
        alice,
        [offers_service.OfferDraft(product, "25.00")],
        24,
        NoMail(),
        "/r/{token}",
        pickup_stores=chosen,
    )

    read = http.get(f"/api/requests/{token}").json()
    assert read["offers"][0]["pickup"]["code"] == "PAR-1" and read["offers"][0]["stores"][0]["code"] == "PAR-1"
    accepted = http.post(
        f"/api/requests/{token}/offers/{offer}/accept",
        json={"card": APPROVED, "delivery": {"kind": "pickup", "name": "Marie Curie", "phone": "01 42 00 00 00"}},
        headers={"Idempotency-Key": "pickup-api-1"},
    )
    assert accepted.status_code == 200, accepted.text
    order = accepted.json()["order"]
    assert order["delivery"]["kind"] == "pickup" and order["store"]["code"] == "PAR-1"
    assert order["delivery"]["phone"] == "+33142000000"
    receipt = http.get(f"/r/{token}/receipt")
    assert receipt.status_code == 200 and 'data-testid="receipt-store"' in receipt.text
    assert "rue de Rivoli" in receipt.text and "Pick up at" in receipt.text


def test_the_request_form_refuses_an_unknown_place_keeping_what_was_typed(site) -> None:  # type: ignore[no-untyped-def]
    browser = site.client()
    browser.get("/")
    with site.sessions() as session:
        before = session.scalar(select(func.count()).select_from(CustomerRequest))
    refused = browser.post(
        "/requests",
        data={"email": "shopper@example.com", "words": "a lamp", "place": "Atlantis"},
        files={"photo": ("p.jpg", product_photo(6, size=200), "image/jpeg")},
    )
    assert refused.status_code == 422
    assert "could not find that place" in refused.text and 'value="Atlantis"' in refused.text
    assert 'value="a lamp"' in refused.text
    with site.sessions() as session:
        assert session.scalar(select(func.count()).select_from(CustomerRequest)) == before
    made = browser.post(
        "/requests",
        data={"email": "shopper@example.com", "place": "Lyon"},
        files={"photo": ("p.jpg", product_photo(6, size=200), "image/jpeg")},
    )
    assert made.status_code in (200, 303), made.text
    page = browser.get(made.headers["location"]) if made.status_code == 303 else made
    assert 'data-testid="location-label">Lyon<' in page.text and 'data-code="LYO-1"' in page.text


def test_the_location_can_be_shared_changed_and_forgotten_later(site, http) -> None:  # type: ignore[no-untyped-def]
    token = _create(http, 14).json()["token"]
    shared = http.put(f"/api/requests/{token}/location", json={"location": "Lyon"})
    assert shared.status_code == 200, shared.text
    answer = shared.json()
    assert answer["location"]["label"] == "Lyon" and all("stores" in m for m in answer["instant_matches"])
    lyon = [m["stores"][0] for m in answer["instant_matches"] if m["stores"] and m["stores"][0]["code"] == "LYO-1"]
    assert lyon and all(s["distance_km"] < 5 for s in lyon)
    moved = http.put(f"/api/requests/{token}/location", json={"near": f"{PARIS[0]},{PARIS[1]}"}).json()
    assert abs(moved["location"]["lat"] - PARIS[0]) < 0.01
    empty = http.put(f"/api/requests/{token}/location", json={})
    assert empty.status_code == 422 and empty.json()["field"] == "location"
    unknown = http.put(f"/api/requests/{token}/location", json={"location": "Atlantis"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "location"
    forgotten = http.delete(f"/api/requests/{token}/location")
    assert forgotten.status_code == 200 and forgotten.json()["location"] is None
    assert http.put(f"/api/requests/{'x' * 32}/location", json={"location": "Lyon"}).status_code == 404


def test_the_staff_api_shows_stores_and_pickup_choices_and_offers_pickup(site, http) -> None:
    """What the workbench shows, over the staff API: each candidate's stores near the customer and the
    stores it may be offered for pickup at; an offer naming one of them is collectable there, one
    naming a store that does not hold the product is refused with nothing sent."""
    made = _create(http, 4, location="75001").json()
    request_id = _request_id(site, made["token"])
    alice = bearer(http, "alice", PASSWORD)
    view = http.post(f"/api/staff/requests/{request_id}/claim", headers=alice)
    assert view.status_code == 200, view.text
    assert view.json()["location"]["source"] == "api"
    in_paris = {product_id(site.sessions, "acme", f"SKU-{i:05d}") for i in range(10)}
    held = [c for c in view.json()["candidates"] if c["product_id"] in in_paris]
    assert held, "the photo of acme's product 4 should have candidates held in Paris"
    candidate = held[0]
    assert [s["code"] for s in candidate["stores"]] == ["PAR-1"] and candidate["stores"][0]["distance_km"] < 10
    [choice] = candidate["pickup_choices"]
    assert (choice["code"], choice["quantity"]) == ("PAR-1", 3) and choice["distance_km"] < 10
    with site.sessions() as session:
        lyon = session.scalar(select(Store.id).where(Store.code == "LYO-1"))

    def offer(store_id: int | None) -> httpx.Response:
        item = {"product_id": candidate["product_id"], "price": "25.00", "pickup_store_id": store_id}
        return http.post(f"/api/staff/requests/{request_id}/offers", json={"offers": [item]}, headers=alice)

    refused = offer(lyon)
    assert refused.status_code == 422 and "no longer holds" in refused.json()["detail"], refused.text
    assert offer(0).status_code == 422
    assert http.get(f"/api/staff/requests/{request_id}", headers=alice).json()["offers"] == []  # nothing sent
    sent = offer(choice["store_id"])
    assert sent.status_code == 200, sent.text
    [made_offer] = sent.json()["offers"]
    assert made_offer["pickup"]["code"] == "PAR-1"
    read = http.get(f"/api/requests/{made['token']}").json()
    assert read["offers"][0]["pickup"]["code"] == "PAR-1"

"""Orders over HTTP, against a real server: accepting needs a delivery (422 naming the field, nothing
charged), the answer and `GET /api/requests/{token}` carry the order number, delivery and tracking,
the receipt page shows them, vendors list only their own orders with a bearer token, and the admin
edits exchange rates on /admin/rates."""

from __future__ import annotations

import re

import httpx
import pytest
from catalogs import product_photo
from delivery_support import ADDRESS, SHIPMENT
from webapp import bearer, offered_request, staffed_site

from vision.embedder import open_embedder
from workflow.payments import APPROVED

PASSWORD = "correct horse battery"


STAFF = (("alice", "operator"), ("root", "admin"), ("acme-shop", "vendor", "acme"), ("globex-shop", "vendor", "globex"))


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    with staffed_site(tmp_path_factory.mktemp("orders-api-catalog"), embedder, PASSWORD, STAFF) as site:
        yield site


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def _offered(site, http: httpx.Client, row: int, vendor: str = "acme") -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    """A customer's request (JSON API) with one offer of `vendor`'s product: (token, request id, offer id)."""
    return offered_request(site, http, product_photo(row, size=200), vendor)


def test_an_accept_without_a_delivery_is_422_naming_the_field_and_charges_nothing(site, http) -> None:
    token, _, offer = _offered(site, http, 2)
    path = f"/api/requests/{token}/offers/{offer}/accept"
    missing = http.post(path, json={"card": APPROVED}, headers={"Idempotency-Key": "nd-1"})
    assert missing.status_code == 422 and missing.json()["field"] == "delivery", missing.text
    no_postcode = http.post(
        path, json={"card": APPROVED, "delivery": {**ADDRESS, "postcode": ""}}, headers={"Idempotency-Key": "nd-2"}
    )
    assert no_postcode.status_code == 422 and no_postcode.json()["field"] == "delivery.postcode"
    bad_phone = http.post(path, json={"card": APPROVED, "delivery": {**ADDRESS, "phone": "12"}})
    assert bad_phone.status_code == 422 and bad_phone.json()["field"] == "delivery.phone"
    pickup = http.post(path, json={"card": APPROVED, "delivery": {**ADDRESS, "kind": "pickup"}})
    assert pickup.status_code == 422 and "cannot be picked up at a store" in pickup.json()["detail"]
    assert not [key for _, key in site.payments.calls if key.endswith(("nd-1", "nd-2"))]
    read = http.get(f"/api/requests/{token}").json()
    assert read["status"] == "offers_sent" and read["order"] is None and read["payment"] is None


def test_an_accept_with_a_delivery_answers_the_order_and_the_request_shows_its_tracking(site, http) -> None:
    token, request_id, offer = _offered(site, http, 3)
    path = f"/api/requests/{token}/offers/{offer}/accept"
    accepted = http.post(path, json={"card": APPROVED, "delivery": ADDRESS}, headers={"Idempotency-Key": "d-1"})
    assert accepted.status_code == 200, accepted.text
    order = accepted.json()["order"]
    assert order["number"].startswith("V-") and order["tracking"] is None
    assert order["delivery"] | {"phone": "+4930901820"} == order["delivery"]  # E.164
    assert (order["delivery"]["postcode"], order["delivery"]["country"]) == ("10117", "DE")
    replay = http.post(path, json={"card": APPROVED, "delivery": ADDRESS}, headers={"Idempotency-Key": "d-1"})
    assert replay.status_code == 200 and replay.json()["accept"]["replayed"] is True
    assert [op for op, key in site.payments.calls if key.endswith("d-1")] == ["authorise"]  # charged once

    alice = bearer(http, "alice", PASSWORD)
    no_tracking = http.post(f"/api/staff/requests/{request_id}/fulfil", headers=alice, json={"carrier": "DHL"})
    assert no_tracking.status_code == 422 and "tracking" in no_tracking.json()["detail"]
    fulfilled = http.post(f"/api/staff/requests/{request_id}/fulfil", headers=alice, json=SHIPMENT)
    assert fulfilled.status_code == 200, fulfilled.text
    tracking = http.get(f"/api/requests/{token}").json()["order"]["tracking"]
    assert (tracking["carrier"], tracking["number"]) == (SHIPMENT["carrier"], SHIPMENT["tracking"])

    receipt = http.get(f"/r/{token}/receipt")
    assert receipt.status_code == 200
    for shown in (order["number"], "25.00 EUR", "Unter den Linden 1", "Germany", "4242", SHIPMENT["tracking"]):
        assert shown in receipt.text, shown


def test_a_receipt_needs_an_order(site, http) -> None:
    token, _, _ = _offered(site, http, 4)
    assert http.get(f"/r/{token}/receipt").status_code == 404


def test_a_vendor_lists_its_own_orders_only(site, http) -> None:
    acme_token, _, acme_offer = _offered(site, http, 5, vendor="acme")
    globex_token, _, globex_offer = _offered(site, http, 6, vendor="globex")
    numbers = {}
    for token, offer in ((acme_token, acme_offer), (globex_token, globex_offer)):
        paid = http.post(f"/api/requests/{token}/offers/{offer}/accept", json={"card": APPROVED, "delivery": ADDRESS})
        assert paid.status_code == 200, paid.text
        numbers[token] = paid.json()["order"]["number"]

    acme = http.get("/api/vendor/orders", headers=bearer(http, "acme-shop", PASSWORD))
    assert acme.status_code == 200, acme.text
    listed = {o["number"]: o for o in acme.json()}
    assert numbers[acme_token] in listed and numbers[globex_token] not in listed
    mine = listed[numbers[acme_token]]
    assert (mine["price"], mine["currency"], mine["delivery"]["city"]) == ("25.00", "EUR", "Berlin")
    globex = http.get("/api/vendor/orders", headers=bearer(http, "globex-shop", PASSWORD)).json()
    assert [o["number"] for o in globex] == [numbers[globex_token]]

    browser = site.client()  # the vendor's page (cookie session) lists the same orders
    assert browser.login("acme-shop", PASSWORD).status_code == 303
    page = browser.get("/vendor/orders").text
    assert numbers[acme_token] in page and numbers[globex_token] not in page and "Unter den Linden 1" in page
    # The outbox reads the offer as what became of it (paid), not as the offer row's frozen "accepted".
    outbox = browser.get("/vendor/outbox").text
    state = re.search(rf'data-offer="{acme_offer}" data-state="([^"]+)"', outbox)
    assert state is not None and state.group(1) == "paid"
    browser.close()

    assert http.get("/api/vendor/orders").status_code == 401
    assert http.get("/api/vendor/orders", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert http.get("/api/vendor/orders", headers=bearer(http, "alice", PASSWORD)).status_code == 403  # not a vendor


def test_the_contract_is_in_the_openapi_document(http) -> None:
    schema = http.get("/schema/openapi.json").json()
    accept = schema["paths"]["/api/requests/{token}/offers/{offer_id}/accept"]["post"]
    assert "422" in accept["responses"]
    ref = accept["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"card", "delivery", "card_number"} <= set(schema["components"]["schemas"][ref]["properties"])
    orders = schema["paths"]["/api/vendor/orders"]["get"]
    assert {"200", "401", "403"} <= set(orders["responses"])


def test_the_admin_edits_the_rates_with_their_date(site) -> None:
    admin = site.client()
    assert admin.login("root", PASSWORD).status_code == 303
    bad = admin.post("/admin/rates", {"currency": "INR", "rate": "-1", "as_of": "2026-12-01"})
    assert bad.status_code == 422 and 'value="INR"' in bad.text  # refused, and what was typed is kept
    saved = admin.post("/admin/rates", {"currency": "inr", "rate": "91.5", "as_of": "2026-12-01", "source": "ECB"})
    assert saved.status_code == 303
    page = admin.get("/admin/rates").text
    assert 'data-testid="rate-INR">91.5<' in page and "2026-12-01" in page
    imported = admin.post("/admin/rates/import", {"csv": "currency,rate,as_of\nUSD,1.05,2026-12-02\n"})
    assert imported.status_code == 303 and "1.05" in admin.get("/admin/rates").text
    assert admin.post("/admin/rates/USD/delete").status_code == 303
    assert 'data-currency="USD"' not in admin.get("/admin/rates").text
    operator = site.client()
    operator.login("alice", PASSWORD)
    assert operator.get("/admin/rates").status_code in (303, 403)
    admin.close()
    operator.close()

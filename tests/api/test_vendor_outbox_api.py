"""The vendor's outbox and orders over HTTP, against a real server and SQLite: `GET /api/vendor/outbox`,
`POST /api/vendor/orders/{number}/shipped` (captures once; a repeat is 409), `POST
/api/vendor/offers/{id}/unavailable` (the customer's accept is then refused, nothing charged), the
photo route, the pages with their confirmation and kept input; another vendor gets 404, nobody 401;
everything in the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest
from catalogs import product_photo
from delivery_support import ADDRESS, SHIPMENT
from webapp import bearer, offered_request, staffed_site

from vision.embedder import open_embedder
from workflow.payments import APPROVED

PASSWORD = "correct horse battery"


STAFF = (("alice", "operator"), ("acme-shop", "vendor", "acme"), ("globex-shop", "vendor", "globex"))


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    folder = tmp_path_factory.mktemp("vendor-outbox-api")
    with staffed_site(folder, embedder, PASSWORD, STAFF, rate_limits="off") as site:
        yield site


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def _offered(site, http: httpx.Client, row: int, vendor: str = "acme") -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    """A customer's request with one offer of `vendor`'s first product: (token, request id, offer id)."""
    return offered_request(site, http, product_photo(row, size=200), vendor)


def _paid(site, http: httpx.Client, row: int, vendor: str = "acme") -> tuple[str, int, int, str]:  # type: ignore[no-untyped-def]
    token, request_id, offer = _offered(site, http, row, vendor)
    paid = http.post(
        f"/api/requests/{token}/offers/{offer}/accept",
        json={"card": APPROVED, "delivery": ADDRESS},
        headers={"Idempotency-Key": f"outbox-{row}"},
    )
    assert paid.status_code == 200, paid.text
    return token, request_id, offer, paid.json()["order"]["number"]


def test_the_outbox_lists_the_vendors_requests_only(site, http) -> None:
    _, request_id, offer, number = _paid(site, http, 2)
    acme = http.get("/api/vendor/outbox", headers=bearer(http, "acme-shop", PASSWORD))
    assert acme.status_code == 200, acme.text
    body = acme.json()
    [row] = [r for r in body["rows"] if r["offer_id"] == offer]
    assert (row["state"], row["order_number"], row["price"], row["operator"]) == ("paid", number, "25.00", "alice")
    assert row["photo_url"] == f"/api/vendor/outbox/{request_id}/photo" and "shopper@example.com" not in acme.text
    photo = http.get(row["photo_url"], headers=bearer(http, "acme-shop", PASSWORD))  # a program can fetch it
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    missing = http.get("/api/vendor/outbox/999999/photo", headers=bearer(http, "acme-shop", PASSWORD))
    assert missing.status_code == 404  # who else may see it: tests/workflow/test_vendor_outbox.py
    assert http.get(row["photo_url"]).status_code == 401
    assert body["page"] == 1 and body["total"] >= 1
    globex = http.get("/api/vendor/outbox", headers=bearer(http, "globex-shop", PASSWORD)).json()
    assert all(r["offer_id"] != offer for r in globex["rows"])
    assert http.get("/api/vendor/outbox").status_code == 401
    assert http.get("/api/vendor/outbox", headers=bearer(http, "alice", PASSWORD)).status_code == 403


def test_shipping_captures_once_and_the_customer_sees_the_tracking(site, http) -> None:
    token, _, _, number = _paid(site, http, 3)
    acme, globex = bearer(http, "acme-shop", PASSWORD), bearer(http, "globex-shop", PASSWORD)
    path = f"/api/vendor/orders/{number}/shipped"
    assert http.post(path, json=SHIPMENT).status_code == 401
    assert http.post(path, json=SHIPMENT, headers=globex).status_code == 404  # not globex's order
    assert http.post("/api/vendor/orders/V-2000-999999/shipped", json=SHIPMENT, headers=acme).status_code == 404
    no_tracking = http.post(path, json={"carrier": "DHL", "tracking": " "}, headers=acme)
    assert no_tracking.status_code == 422 and "tracking" in no_tracking.json()["detail"]
    shipped = http.post(path, json=SHIPMENT, headers=acme)
    assert shipped.status_code == 200, shipped.text
    assert shipped.json() == {"number": number, "state": "shipped", "payment_status": "captured"}
    again = http.post(path, json=SHIPMENT, headers=acme)
    assert again.status_code == 409 and "already" in again.json()["detail"]
    assert [op for op, _ in site.payments.calls].count("capture") == 1  # this site captured once so far
    tracking = http.get(f"/api/requests/{token}").json()["order"]["tracking"]
    assert (tracking["carrier"], tracking["number"]) == (SHIPMENT["carrier"], SHIPMENT["tracking"])
    ready = http.post(f"/api/vendor/orders/{number}/ready", headers=acme)
    assert ready.status_code == 422  # a shipped order is not collected at a store


def test_not_available_is_seen_and_the_accept_is_refused(site, http) -> None:
    token, request_id, offer = _offered(site, http, 4)
    acme, globex = bearer(http, "acme-shop", PASSWORD), bearer(http, "globex-shop", PASSWORD)
    path = f"/api/vendor/offers/{offer}/unavailable"
    assert http.post(path).status_code == 401
    assert http.post(path, headers=globex).status_code == 404
    flagged = http.post(path, headers=acme)
    assert flagged.status_code == 200 and flagged.json() == {"offer_id": offer, "unavailable": True, "changed": True}
    assert http.post(path, headers=acme).json()["changed"] is False
    calls = len(site.payments.calls)
    refused = http.post(
        f"/api/requests/{token}/offers/{offer}/accept",
        json={"card": APPROVED, "delivery": ADDRESS},
        headers={"Idempotency-Key": "flagged-1"},
    )
    assert refused.status_code == 409 and "no longer available" in refused.json()["detail"]
    assert len(site.payments.calls) == calls  # nothing charged, nothing held
    alice = bearer(http, "alice", PASSWORD)  # the operator sees it at once: the offer's mark, and the list
    staff = http.get(f"/api/staff/requests/{request_id}", headers=alice)
    assert staff.status_code == 200 and [o["unavailable"] for o in staff.json()["offers"]] == [True]
    listed = http.get("/api/staff/requests", params={"view": "unavailable"}, headers=alice)
    assert listed.status_code == 200 and request_id in [r["id"] for r in listed.json()]
    assert http.get("/api/staff/requests/counts", headers=alice).json()["unavailable"] >= 1
    assert http.get(f"/api/requests/{token}").json()["offers"][0]["unavailable"] is True  # the customer too


def test_the_photo_is_the_vendors_only_and_the_pages_confirm(site, http) -> None:
    _, request_id, _, number = _paid(site, http, 5)
    acme = site.client()
    assert acme.login("acme-shop", PASSWORD).status_code == 303
    photo = acme.get(f"/vendor/outbox/{request_id}/photo")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.headers["cache-control"] == "private, no-store"
    assert http.get(f"/vendor/outbox/{request_id}/photo", follow_redirects=False).status_code in (302, 303, 401)
    outbox = acme.get("/vendor/outbox")
    assert outbox.status_code == 200 and f'data-request="{request_id}"' in outbox.text
    orders = acme.get("/vendor/orders")
    assert number in orders.text and "Unter den Linden 1" in orders.text
    unconfirmed = acme.post(f"/vendor/orders/{number}/shipped", {"carrier": "DHL", "tracking": "T-1"})
    assert unconfirmed.status_code == 422 and 'value="T-1"' in unconfirmed.text  # what was typed is kept
    shipped = acme.post(f"/vendor/orders/{number}/shipped", {"confirm": "yes", **SHIPMENT})
    assert shipped.status_code == 303, shipped.text
    assert 'data-state="shipped"' in acme.get("/vendor/orders").text
    acme.close()


def test_the_contract_is_in_the_openapi_document(http) -> None:
    paths = http.get("/schema/openapi.json").json()["paths"]
    outbox = paths["/api/vendor/outbox"]["get"]
    assert {"200", "401", "403"} <= set(outbox["responses"]) and outbox["tags"] == ["vendor"]
    shipped = paths["/api/vendor/orders/{number}/shipped"]["post"]
    assert {"200", "401", "404", "409", "422"} <= set(shipped["responses"]) and "requestBody" in shipped
    assert {"200", "401", "404"} <= set(paths["/api/vendor/orders/{number}/ready"]["post"]["responses"])
    assert {"200", "401", "404", "409"} <= set(paths["/api/vendor/offers/{offer_id}/unavailable"]["post"]["responses"])

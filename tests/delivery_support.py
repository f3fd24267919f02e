"""A valid delivery address in the three shapes the tests send it: checked (workflow calls), JSON
(the API's `delivery`) and form fields (the accept form)."""

from __future__ import annotations

from workflow.orders import check_delivery

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "line2": "",
    "city": "Berlin",
    "postcode": "10117",
    "country": "DE",
    "phone": "030 901820",
}
DELIVERY = check_delivery(ADDRESS)
#: The accept form's fields (merge into the card and idempotency key).
ADDRESS_FORM = {"kind": "ship", **ADDRESS}
#: A fulfilment's shipment, as the operator types it.
SHIPMENT = {"carrier": "DHL", "tracking": "JD014600006281234567"}


def fill_address(page, offer_id: int) -> None:  # type: ignore[no-untyped-def]
    """Type `ADDRESS` into the accept form of one offer (a Playwright page), as a customer would."""
    for field in ("name", "line1", "postcode", "city", "phone"):
        page.get_by_test_id(f"delivery-{field}-{offer_id}").fill(ADDRESS[field])
    page.get_by_test_id(f"delivery-country-{offer_id}").select_option(ADDRESS["country"])


def fill_shipment(page) -> None:  # type: ignore[no-untyped-def]
    """Type `SHIPMENT` into the workbench's fulfil form."""
    page.get_by_test_id("fulfil-carrier").fill(SHIPMENT["carrier"])
    page.get_by_test_id("fulfil-tracking").fill(SHIPMENT["tracking"])


def paid_request(site, operator: str, photo: bytes) -> str:  # type: ignore[no-untyped-def]
    """A request of a running `tests.webapp` site that has been paid (an order with a receipt): made
    through the customer API, offered by `operator` (an existing account), accepted with `ADDRESS`.
    Its customer token."""
    import httpx
    from sqlalchemy import select

    from catalog.db import Product
    from workflow import claims, offers_service
    from workflow.models import CustomerRequest, User
    from workflow.request_tokens import token_hash

    with httpx.Client(base_url=site.url, timeout=60) as http:
        made = http.post(
            "/api/requests", data={"email": "buyer@example.com"}, files={"photo": ("p.png", photo, "image/png")}
        )
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        with site.sessions() as session:
            request_id = session.scalar(
                select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token))
            )
            user = session.scalar(select(User).where(User.name == operator))
            product = session.scalar(select(Product.id).order_by(Product.id).limit(1))
        claims.claim(site.sessions, request_id, user, 600)
        draft = offers_service.OfferDraft(product, "25.00")
        [offer] = offers_service.send_offers(
            site.sessions, request_id, user, [draft], 24, site.app.state.outbox, "/r/{token}"
        )
        paid = http.post(
            f"/api/requests/{token}/offers/{offer}/accept", json={"card": "4242424242424242", "delivery": ADDRESS}
        )
        assert paid.status_code == 200, paid.text
    return token

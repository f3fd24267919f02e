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

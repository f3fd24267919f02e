"""Orders for vendors: `GET /api/vendor/orders` lists the paid orders of the token's vendor, with
product, price, delivery address and tracking. A vendor sees its own orders only: the query is by
the account's vendor, never by anything the client sends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, get
from litestar.openapi import ResponseSpec
from sqlalchemy.orm import sessionmaker

from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as
from api.dependencies import Db, SignedIn
from api.openapi_docs import ErrorBody, described
from workflow import vendor_orders
from workflow.errors import Forbidden


@dataclass
class DeliveryAddress:
    """Where an order goes, as the customer gave it (checked when they accepted)."""

    kind: Annotated[str, described("`ship` to this address (`pickup` once vendors have stores)")]
    name: Annotated[str, described("The recipient's full name")]
    line1: Annotated[str, described("Street and number")]
    line2: Annotated[str, described("A second address line; may be empty")]
    city: Annotated[str, described("The city or town")]
    postcode: Annotated[str, described("The postcode")]
    country: Annotated[str, described("The country, ISO 3166-1 alpha-2 (e.g. `DE`)")]
    country_name: Annotated[str, described("The country's name in English (e.g. `Germany`)")]
    phone: Annotated[str, described("The recipient's phone number for the carrier, E.164 (e.g. `+4930901820`)")]


@dataclass
class Tracking:
    """The shipment, once the order is fulfilled."""

    carrier: Annotated[str, described("The carrier, as the operator typed it (e.g. `DHL`)")]
    number: Annotated[str, described("The carrier's tracking number")]
    shipped_at: Annotated[str, described("When it was marked shipped (UTC, ISO 8601 to the second)")]


@dataclass
class VendorOrder:
    """One paid order of the vendor's product; `tracking` is null until it ships."""

    number: Annotated[str, described("The order number, e.g. `V-2026-000123` (the customer has it too)")]
    product_id: Annotated[int, described("The catalog product's id")]
    title: Annotated[str, described("The product's title when it was offered")]
    price: Annotated[str, described("The price paid, a decimal as text, in `currency`")]
    currency: Annotated[str, described("The price's currency, ISO 4217")]
    payment_status: Annotated[str, described("`authorised` (held until shipped), `captured`, `refunded`, ...")]
    paid_at: Annotated[str | None, described("When it was paid (UTC, ISO 8601 to the second)")]
    delivery: Annotated[DeliveryAddress, described("Where the order goes")]
    tracking: Annotated[Tracking | None, described("Carrier and tracking number; null until shipped")]
    state: Annotated[
        str,
        described(
            "Where fulfilment stands: `to_ship`, `shipped`; for a pickup order `to_prepare`, `ready` (the "
            "customer was told), `collected`; or `cancelled`. Fulfil with `POST /api/vendor/orders/{number}/...`"
        ),
    ] = "to_ship"


def _orders_of(db: sessionmaker, vendor_id: int) -> list[VendorOrder]:
    found = vendor_orders.vendor_order_rows(db, vendor_id)
    return [
        VendorOrder(
            number=o["number"],
            product_id=o["product_id"],
            title=o["title"],
            price=o["price"],
            currency=o["currency"],
            payment_status=o["payment_status"],
            paid_at=o["paid_at"],
            delivery=DeliveryAddress(**o["delivery"]),
            tracking=Tracking(**o["tracking"]) if o["tracking"] else None,
            state=o["state"],
        )
        for o in found
    ]


REFUSALS = {
    401: ResponseSpec(ErrorBody, description="No bearer token, or one that is unknown, expired or revoked"),
    403: ResponseSpec(ErrorBody, description="Not a vendor token, or the account is not linked to a vendor"),
}


class VendorOrdersController(Controller):
    path = "/api/vendor"
    tags = ("vendor",)
    guards = (bearer_as("vendor"),)
    security = SECURITY
    exception_handlers = EXCEPTION_HANDLERS

    @get("/orders", name="api_vendor_orders", responses=REFUSALS)
    async def list_orders(self, user: SignedIn, db: Db) -> list[VendorOrder]:
        """The paid orders of this vendor's products, newest first (at most 200): product, price with
        currency, the delivery address and, once shipped, carrier and tracking number. A vendor token
        only (`POST /api/staff/token` with a vendor account); other vendors' orders are never listed."""
        if user.vendor_id is None:
            raise Forbidden(
                "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
            )
        return await asyncio.to_thread(_orders_of, db, user.vendor_id)

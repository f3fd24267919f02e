"""Orders for vendors: `GET /api/vendor/orders` lists the paid orders of the token's vendor, with
product, price, delivery address and tracking. A vendor sees its own orders only: the query is by
the account's vendor, never by anything the client sends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from litestar import Controller, get
from litestar.openapi import ResponseSpec
from sqlalchemy.orm import sessionmaker

from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as
from api.dependencies import Db, SignedIn
from api.openapi_docs import ErrorBody
from workflow import orders
from workflow.errors import Forbidden


@dataclass
class DeliveryAddress:
    kind: str
    name: str
    line1: str
    line2: str
    city: str
    postcode: str
    country: str
    country_name: str
    phone: str


@dataclass
class Tracking:
    carrier: str
    number: str
    shipped_at: str


@dataclass
class VendorOrder:
    """One paid order of the vendor's product; `tracking` is null until it ships."""

    number: str
    product_id: int
    title: str
    price: str
    currency: str
    payment_status: str
    paid_at: str | None
    delivery: DeliveryAddress
    tracking: Tracking | None


def _orders_of(db: sessionmaker, vendor_id: int) -> list[VendorOrder]:
    with db() as session:
        found = orders.vendor_orders(session, vendor_id)
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

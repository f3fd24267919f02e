"""The vendor's outbox and orders over HTTP: the pages /vendor/outbox and /vendor/orders, and the
JSON API under /api/vendor (outbox, shipped, ready, collected, unavailable).

The work is in `workflow.vendor_outbox` (the rows), `workflow.vendor_orders` (fulfilment: the same
capture as the operator's, exactly once) and `workflow.offer_flags` ("not available"). Here: who is
asking (the vendor comes from the signed-in account or the bearer token, never from the client),
confirmation before money moves, and answers. Another vendor's order or offer is 404, the same as
one that does not exist; no credential is 401 (the API) or the sign-in page (the pages).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody
from litestar.response import File, Redirect, Template

from api.auth import vendor_staff_only
from api.bearer import EXCEPTION_HANDLERS, SECURITY, bearer_as
from api.dependencies import AppSettings, Db, Mail, Payments, RequestLink, SignedIn
from api.forms import require_confirmation
from api.openapi_docs import described, refusals
from api.pages import notice_redirect
from api.pages import page as render_page
from workflow import vendor_orders, vendor_outbox
from workflow.errors import Forbidden, Invalid, NotFound
from workflow.offer_flags import flag_unavailable
from workflow.uploads import image_path

_FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
PRIVATE = {"Cache-Control": "private, no-store"}


def vendor_of(user: Any) -> int:
    """The signed-in account's vendor; an account without one (an admin) is refused."""
    if user.vendor_id is None:
        raise Forbidden(
            "This account is not linked to a vendor.", "Ask an admin to link it (vitrine users add --vendor)."
        )
    return int(user.vendor_id)


@dataclass
class ShipForm:
    """Marking an order shipped in the browser: carrier, tracking number and the ticked confirmation."""

    confirm: str = ""
    carrier: str = ""
    tracking: str = ""


@dataclass
class ConfirmForm:
    confirm: str = ""


def _photo_file(db: Any, workspace: Any, vendor_id: int, request_id: int) -> File:
    """The request's photo for this vendor (`vendor_outbox.photo_for` decides who may see it)."""
    path = image_path(workspace, vendor_outbox.photo_for(db, vendor_id, request_id))
    if path is None:
        raise NotFound("There is no such photo.", "Open your outbox to see your requests.")
    return File(path, media_type="image/jpeg", content_disposition_type="inline", headers=PRIVATE)


class VendorOutboxPagesController(Controller):
    path = "/vendor"
    guards = (vendor_staff_only,)
    include_in_schema = False

    @get("/outbox", name="vendor_outbox")
    async def outbox(self, request: Request, user: SignedIn, db: Db, page: FromQuery[int] = 1) -> Template:
        """The requests the vendor's products answered, newest first, 25 requests a page (`?page=`)."""
        found = await asyncio.to_thread(vendor_outbox.outbox_page, db, vendor_of(user), page)
        return render_page(request, "vendor_outbox.html", outbox=found, steps=vendor_outbox.STEPS)

    @get("/outbox/{request_id:int}/photo", name="vendor_outbox_photo")
    async def photo(self, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings) -> File:
        """A request's photo, only for a vendor one of whose products was a candidate of it (else 404)."""
        return await asyncio.to_thread(_photo_file, db, settings.workspace, vendor_of(user), request_id)

    @get("/orders", name="vendor_orders")
    async def orders(self, request: Request, user: SignedIn, db: Db) -> Template:
        """Paid orders to fulfil, with the delivery address or the pickup store."""
        return await self._orders_page(request, user, db)

    async def _orders_page(
        self, request: Request, user: Any, db: Any, status_code: int = 200, **context: Any
    ) -> Template:
        rows = await asyncio.to_thread(vendor_orders.vendor_order_rows, db, vendor_of(user))
        context.setdefault("error", None)
        context.setdefault("typed", {})
        return render_page(request, "vendor_orders.html", status_code=status_code, orders=rows, **context)

    @post("/orders/{number:str}/shipped", name="vendor_order_shipped")
    async def shipped(
        self,
        request: Request,
        number: FromPath[str],
        data: Annotated[ShipForm, _FORM],
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> Redirect | Template:
        """Mark shipped: captures the held payment once; a refused form keeps what was typed."""
        try:
            require_confirmation(data.confirm, "mark the order shipped and take the payment")
            ship = functools.partial(
                vendor_orders.ship,
                carrier=data.carrier,
                tracking=data.tracking,
                link=vendor_orders.Link(link, settings.secret_key),
            )
            await asyncio.to_thread(ship, db, payments, outbox, vendor_of(user), number, user)
        except Invalid as exc:
            typed = {"number": number, "carrier": data.carrier, "tracking": data.tracking}
            return await self._orders_page(request, user, db, 422, error=exc.message, typed=typed)
        return notice_redirect(request, "/vendor/orders", f"Order {number} is shipped; the payment was taken.")

    @post("/orders/{number:str}/ready", name="vendor_order_ready")
    async def ready(
        self,
        request: Request,
        number: FromPath[str],
        data: Annotated[ConfirmForm, _FORM],
        user: SignedIn,
        db: Db,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> Redirect:
        """Ready for pickup at its store: the customer is e-mailed where and when to collect it."""
        require_confirmation(data.confirm, "tell the customer the order is ready for pickup")
        ready = functools.partial(vendor_orders.ready, link=vendor_orders.Link(link, settings.secret_key))
        first = await asyncio.to_thread(ready, db, outbox, vendor_of(user), number, user)
        text = "the customer was e-mailed the store's address" if first else "it was already"
        return notice_redirect(request, "/vendor/orders", f"Order {number} is ready for pickup: {text}.")

    @post("/orders/{number:str}/collected", name="vendor_order_collected")
    async def collected(
        self,
        request: Request,
        number: FromPath[str],
        data: Annotated[ConfirmForm, _FORM],
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> Redirect:
        """The customer collected it: captures the held payment once."""
        require_confirmation(data.confirm, "mark the order collected and take the payment")
        collected = functools.partial(vendor_orders.collected, link=vendor_orders.Link(link, settings.secret_key))
        await asyncio.to_thread(collected, db, payments, outbox, vendor_of(user), number, user)
        return notice_redirect(request, "/vendor/orders", f"Order {number} was collected; the payment was taken.")

    @post("/offers/{offer_id:int}/unavailable", name="vendor_offer_unavailable")
    async def unavailable(
        self, request: Request, offer_id: FromPath[int], data: Annotated[ConfirmForm, _FORM], user: SignedIn, db: Db
    ) -> Redirect:
        """Flag an offered product not available: the operator sees it, the customer cannot accept it."""
        require_confirmation(data.confirm, "mark this product not available for this offer")
        await asyncio.to_thread(flag_unavailable, db, vendor_of(user), offer_id, user)
        return notice_redirect(
            request, "/vendor/outbox", f"Offer {offer_id} is marked not available; the operator sees it now."
        )


# --- the JSON API -------------------------------------------------------------------------------


@dataclass
class OutboxRow:
    """One of the vendor's products in one customer request, and how far it got."""

    request_id: Annotated[int, described("The customer request's number (the customer stays anonymous)")]
    received_at: Annotated[str, described("When the request came in (UTC, ISO 8601 to the second)")]
    photo_url: Annotated[str, described("The customer's photo, for this vendor only (path on this server)")]
    product_id: Annotated[int, described("The catalog product's id")]
    title: Annotated[str, described("The product's title (as offered, once offered)")]
    sku: Annotated[str, described("The product's SKU; empty for a product only known from its offer")]
    state: Annotated[
        str,
        described(
            "`candidate` → `offered` → `accepted` → `paid` → `fulfilled`, or aside: `unavailable`, "
            "`declined`, `expired`, `withdrawn`, `superseded`, `cancelled`"
        ),
    ]
    offer_id: Annotated[int | None, described("The offer's id; null while the product is only a candidate")]
    price: Annotated[str, described("The price (paid, offered, or the catalog's), a decimal as text")]
    currency: Annotated[str, described("The price's currency, ISO 4217")]
    delivery: Annotated[str, described("How it reaches the customer, e.g. `ship to Berlin, DE` or `pickup at X`")]
    order_number: Annotated[str | None, described("The order number once paid, e.g. `V-2026-000123`")]
    operator: Annotated[str, described("The operator who handled the request; empty before one did")]
    unavailable: Annotated[bool, described("Whether the vendor flagged this offer not available")]


@dataclass
class OutboxAnswer:
    """One page of the vendor's outbox, newest request first."""

    rows: Annotated[list[OutboxRow], described("The page's rows (one per request and product)")]
    page: Annotated[int, described("This page's number, from 1")]
    pages: Annotated[int, described("How many pages there are")]
    total: Annotated[int, described("How many requests the vendor's products answered in all")]


@dataclass
class Shipment:
    """The shipment of an order: both fields are required."""

    carrier: Annotated[str, described("The carrier, e.g. `DHL` (at most 80 characters)")]
    tracking: Annotated[str, described("The carrier's tracking number (at most 80 characters)")]


@dataclass
class OrderDone:
    """What the action did."""

    number: Annotated[str, described("The order number")]
    state: Annotated[str, described("Where the order stands now: `shipped`, `ready` or `collected`")]
    payment_status: Annotated[str, described("The payment: `captured` once shipped or collected, else `authorised`")]


@dataclass
class OfferFlagged:
    """An offer flagged not available."""

    offer_id: Annotated[int, described("The offer's id")]
    unavailable: Annotated[bool, described("Always true: the customer can no longer accept this offer")]
    changed: Annotated[bool, described("False when it had been flagged already (nothing changed)")]


def _order_state(db: Any, vendor_id: int, number: str) -> OrderDone:
    rows = vendor_orders.vendor_order_rows(db, vendor_id, limit=1, number=number)
    if not rows:
        raise NotFound(f"You have no order {number}.")
    row = rows[0]
    return OrderDone(number=number, state=row["state"], payment_status=row["payment_status"])


class VendorOutboxApiController(Controller):
    path = "/api/vendor"
    tags = ("vendor",)
    guards = (bearer_as("vendor"),)
    security = SECURITY
    exception_handlers = EXCEPTION_HANDLERS

    @get("/outbox", name="api_vendor_outbox", responses=refusals(400, 401, 403))
    async def outbox(self, user: SignedIn, db: Db, page: FromQuery[int] = 1) -> OutboxAnswer:
        """The requests this vendor's products answered, newest first, 25 requests a page (`page`
        from 1): product, state, price, delivery and the operator; the customer's photo by URL, never
        their e-mail. Another vendor's requests never appear."""
        found = await asyncio.to_thread(vendor_outbox.outbox_page, db, vendor_of(user), page)
        rows = [
            OutboxRow(
                **{k: r[k] for k in OutboxRow.__dataclass_fields__ if k in r},
                photo_url=f"/api/vendor/outbox/{r['request_id']}/photo",
            )
            for r in found.rows
        ]
        return OutboxAnswer(rows=rows, page=found.page, pages=found.pages, total=found.total)

    @get(
        "/outbox/{request_id:int}/photo",
        name="api_vendor_outbox_photo",
        media_type="image/jpeg",
        responses=refusals(400, 401, 403, 404),
    )
    async def photo(self, request_id: FromPath[int], user: SignedIn, db: Db, settings: AppSettings) -> File:
        """The customer's photo of a request (JPEG), only for a vendor one of whose products was a
        candidate of it; another request is 404. The `photo_url` of an outbox row."""
        return await asyncio.to_thread(_photo_file, db, settings.workspace, vendor_of(user), request_id)

    @post(
        "/orders/{number:str}/shipped",
        name="api_vendor_order_shipped",
        status_code=200,
        responses=refusals(400, 401, 402, 403, 404, 409, 422),
    )
    async def shipped(
        self,
        number: FromPath[str],
        data: JSONBody[Shipment],
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> OrderDone:
        """Mark this vendor's order shipped with carrier and tracking number: the held payment is
        captured, exactly once (a repeat is 409 and charges nothing more), and the customer is e-mailed
        the receipt with the tracking number. A pickup order is 422; another vendor's order 404."""
        vendor_id = vendor_of(user)
        ship = functools.partial(
            vendor_orders.ship,
            carrier=data.carrier,
            tracking=data.tracking,
            link=vendor_orders.Link(link, settings.secret_key),
        )
        await asyncio.to_thread(ship, db, payments, outbox, vendor_id, number, user)
        return await asyncio.to_thread(_order_state, db, vendor_id, number)

    @post(
        "/orders/{number:str}/ready",
        name="api_vendor_order_ready",
        status_code=200,
        responses=refusals(400, 401, 403, 404, 409, 422),
    )
    async def ready(
        self, number: FromPath[str], user: SignedIn, db: Db, outbox: Mail, link: RequestLink, settings: AppSettings
    ) -> OrderDone:
        """Mark this vendor's pickup order ready at its store: the customer is e-mailed the store's
        address and opening hours (once; a repeat changes nothing). No money moves until collected."""
        vendor_id = vendor_of(user)
        ready = functools.partial(vendor_orders.ready, link=vendor_orders.Link(link, settings.secret_key))
        await asyncio.to_thread(ready, db, outbox, vendor_id, number, user)
        return await asyncio.to_thread(_order_state, db, vendor_id, number)

    @post(
        "/orders/{number:str}/collected",
        name="api_vendor_order_collected",
        status_code=200,
        responses=refusals(400, 401, 402, 403, 404, 409, 422),
    )
    async def collected(
        self,
        number: FromPath[str],
        user: SignedIn,
        db: Db,
        payments: Payments,
        outbox: Mail,
        link: RequestLink,
        settings: AppSettings,
    ) -> OrderDone:
        """The customer collected this vendor's pickup order (after `ready`): the held payment is
        captured, exactly once, and the receipt e-mailed."""
        vendor_id = vendor_of(user)
        collected = functools.partial(vendor_orders.collected, link=vendor_orders.Link(link, settings.secret_key))
        await asyncio.to_thread(collected, db, payments, outbox, vendor_id, number, user)
        return await asyncio.to_thread(_order_state, db, vendor_id, number)

    @post(
        "/offers/{offer_id:int}/unavailable",
        name="api_vendor_offer_unavailable",
        status_code=200,
        responses=refusals(400, 401, 403, 404, 409),
    )
    async def unavailable(self, offer_id: FromPath[int], user: SignedIn, db: Db) -> OfferFlagged:
        """Flag this vendor's offered product not available: the operator sees a mark on the offer at
        once and the customer can no longer accept it (nothing is charged). Only an offer the customer
        has not answered yet (409 otherwise); another vendor's offer is 404. Audited."""
        changed = await asyncio.to_thread(flag_unavailable, db, vendor_of(user), offer_id, user)
        return OfferFlagged(offer_id=offer_id, unavailable=True, changed=changed)

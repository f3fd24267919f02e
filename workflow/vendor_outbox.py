"""The vendor's outbox: the requests its products answered, and how far each got.

A row is one request and one of the vendor's products in it, candidate or offered, newest request
first. Its state walks candidate → offered → accepted → paid → fulfilled (`STEPS`), or ends aside:
declined, expired, withdrawn, superseded, cancelled, or "not available" when the vendor flagged it.

Built with a fixed number of grouped queries per page (requests of the page; candidates; offers;
orders with payments; flags; pickup stores), never one per row. The customer is shown by the photo
(`photo_sha`, served only through `photo_for`), never by e-mail: a vendor sees a request's photo only
when one of its own products was a candidate of that request (or offered for it)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product
from workflow import offer_flags, orders
from workflow.errors import NotFound
from workflow.models import Candidate, CustomerRequest, Offer, Payment, User, utc
from workflow.pickups import pickups_of
from workflow.states import OfferStatus, RequestStatus

PER_PAGE = 25
STEPS = ("candidate", "offered", "accepted", "paid", "fulfilled")
R = RequestStatus


@dataclass(frozen=True)
class OutboxPage:
    rows: list[dict]
    page: int
    pages: int
    total: int  # requests


def _request_ids(vendor_id: int):  # type: ignore[no-untyped-def]
    """Ids of the requests where the vendor's products were candidates or offered (a subquery)."""
    candidates = (
        select(Candidate.request_id.label("request_id"))
        .join(Product, Product.id == Candidate.product_id)
        .where(Product.vendor_id == vendor_id)
    )
    offered = select(Offer.request_id.label("request_id")).where(Offer.vendor_id == vendor_id)
    return union(candidates, offered).subquery()


def state_of(offer: Offer | None, request_status: str, accepted_offer_id: int | None, flagged: bool) -> str:
    """Where a (request, product) row stands; see the module's docstring."""
    if offer is None:
        return "candidate"
    if flagged and offer.status == OfferStatus.SENT:
        return "unavailable"
    if offer.status == OfferStatus.SENT:
        if request_status == R.ACCEPTED and accepted_offer_id == offer.id:
            return "accepted"  # the customer is paying for it now
        return "offered"
    if offer.status == OfferStatus.ACCEPTED:
        if request_status == R.PAID:
            return "paid"
        if request_status in (R.FULFILLED, R.CLOSED):
            return "fulfilled"
        if request_status == R.CANCELLED:
            return "cancelled"
        return "accepted"
    return str(offer.status)


def outbox_page(db: sessionmaker, vendor_id: int, page: int = 1, per_page: int = PER_PAGE) -> OutboxPage:
    """One page of the vendor's outbox (pages of requests, newest first; a row per product of theirs)."""
    with db() as session:
        ids = _request_ids(vendor_id)
        total = session.scalar(select(func.count()).select_from(ids)) or 0
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        requests = session.execute(
            select(CustomerRequest, User.name)
            .outerjoin(User, User.id == CustomerRequest.operator_id)
            .where(CustomerRequest.id.in_(select(ids.c.request_id)))
            .order_by(CustomerRequest.created_at.desc(), CustomerRequest.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        rows = _rows(session, vendor_id, [(r, operator) for r, operator in requests])
    return OutboxPage(rows, page, pages, total)


def _rows(session: Session, vendor_id: int, requests: list[tuple[CustomerRequest, str | None]]) -> list[dict]:
    request_ids = [r.id for r, _ in requests]
    if not request_ids:
        return []
    candidates = session.execute(
        select(Candidate.request_id, Product.id, Product.title, Product.sku, Product.price, Product.currency)
        .join(Product, Product.id == Candidate.product_id)
        .where(Candidate.request_id.in_(request_ids), Product.vendor_id == vendor_id)
        .distinct()
    ).all()
    offers = list(
        session.scalars(
            select(Offer).where(Offer.request_id.in_(request_ids), Offer.vendor_id == vendor_id).order_by(Offer.id)
        )
    )
    offer_ids = [o.id for o in offers]
    paid = {
        order.offer_id: (order, payment)
        for order, payment in session.execute(
            select(orders.Order, Payment)
            .join(Payment, Payment.id == orders.Order.payment_id)
            .where(orders.Order.offer_id.in_(offer_ids or [-1]), orders.Order.number.is_not(None))
        ).all()
    }
    flags = offer_flags.flags_of(session, offer_ids)
    pickups = pickups_of(session, offer_ids)
    latest: dict[tuple[int, int], Offer] = {}
    for offer in offers:  # the latest offer of a product on a request stands for it
        latest[(offer.request_id, offer.product_id)] = offer
    products: dict[int, dict[int, dict]] = {rid: {} for rid in request_ids}  # offered first, then candidates
    skus = {product_id: sku for _, product_id, _, sku, _, _ in candidates}
    for offer in offers:
        products[offer.request_id][offer.product_id] = {
            "title": offer.title,
            "sku": skus.get(offer.product_id, ""),
            "price": offer.price,
            "currency": offer.currency,
        }
    for request_id, product_id, title, sku, price, currency in candidates:
        products[request_id].setdefault(product_id, {"title": title, "sku": sku, "price": price, "currency": currency})
    rows = []
    for request, operator in requests:
        for product_id, product in products[request.id].items():
            offer = latest.get((request.id, product_id))
            order, payment = paid.get(offer.id, (None, None)) if offer else (None, None)
            flag = flags.get(offer.id) if offer else None
            state = state_of(offer, request.status, request.accepted_offer_id, flag is not None)
            pickup = pickups.get(offer.id) if offer else None
            rows.append(
                {
                    "request_id": request.id,
                    "received_at": utc(request.created_at).isoformat(timespec="seconds"),
                    "product_id": product_id,
                    "title": product["title"],
                    "sku": product["sku"],
                    "state": state,
                    "step": STEPS.index(state) if state in STEPS else -1,
                    "offer_id": offer.id if offer else None,
                    "price": str(payment.amount if payment else product["price"]),
                    "currency": payment.currency if payment else product["currency"],
                    "delivery": _delivery(order, pickup),
                    "order_number": order.number if order else None,
                    "operator": operator or "",
                    "unavailable": flag is not None,
                    "can_flag": state == "offered",
                }
            )
    return rows


def _delivery(order: orders.Order | None, pickup) -> str:  # type: ignore[no-untyped-def]
    """How the goods reach the customer, in a few words: a paid order's choice, else what was offered."""
    if order is not None:
        if order.kind == "pickup":
            return f"pickup at {pickup.name}" if pickup else "pickup at a store"
        return f"ship to {order.city}, {order.country}"
    if pickup is not None:
        return f"ship, or pickup at {pickup.name}"
    return "ship"


def photo_for(db: sessionmaker, vendor_id: int, request_id: int) -> str:
    """The sha256 of a request's photo, if this vendor may see it: one of its products was a candidate
    of the request, or was offered for it. Otherwise NotFound, the same as for a request that does not
    exist, so a vendor learns nothing about other vendors' requests."""
    with db() as session:
        ids = _request_ids(vendor_id)
        mine = session.scalar(select(ids.c.request_id).where(ids.c.request_id == request_id).limit(1))
        request = session.get(CustomerRequest, request_id) if mine is not None else None
        if request is None:
            raise NotFound("There is no such photo.", "Open your outbox to see your requests.")
        return request.photo_sha256

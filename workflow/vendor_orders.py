"""The vendor's orders to fulfil: paid orders of its products, and the vendor's ways to fulfil them.

- Shipping: the vendor marks the order shipped with carrier and tracking. That is the fulfilment
  that captures the held payment, the operator's own path (`offers_service.fulfil`, steps in
  `workflow.fulfilment`), so the money is taken exactly once whoever clicks, and however often.
- Pickup at a store: "ready for pickup" e-mails the customer the store's address and opening hours
  (through the mail outbox, in the same transaction; no money moves: the customer may never come),
  then "collected" captures the payment when the goods are handed over.

An order is looked up by its number and the signed-in user's vendor together: another vendor's order
is NotFound, the same answer as a number that does not exist."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, sessionmaker

from mail.outbox import Outbox
from workflow import audit, offers_service, orders
from workflow.claims import actor
from workflow.errors import Conflict, Invalid, NotFound
from workflow.fulfilment import OrderFulfilment, fulfilment_of
from workflow.models import CustomerRequest, Offer, Payment, User, now, utc
from workflow.payments import PaymentProvider
from workflow.pickups import store_by_id
from workflow.requests_service import link_for
from workflow.states import RequestStatus

SHOWN = 200
_FINISHED = (RequestStatus.FULFILLED, RequestStatus.CLOSED, RequestStatus.CANCELLED)


@dataclass(frozen=True)
class Link:
    """The customer's request page address pattern and the app's secret (for the receipt's link)."""

    pattern: str = ""
    secret: str = ""


def _state(order: orders.Order, request_status: str, ready_at: object) -> str:
    if request_status in (RequestStatus.FULFILLED, RequestStatus.CLOSED):
        return "collected" if order.kind == "pickup" else "shipped"
    if request_status == RequestStatus.CANCELLED:
        return "cancelled"
    if order.kind == "pickup":
        return "ready" if ready_at else "to_prepare"
    return "to_ship"


def vendor_order_rows(db: sessionmaker, vendor_id: int, limit: int = SHOWN, number: str | None = None) -> list[dict]:
    """The vendor's paid orders with the delivery address (or pickup store), the payment, and where
    fulfilment stands (`state`: to_ship, to_prepare, ready, shipped, collected, cancelled): those
    still to fulfil first (so `limit` never hides work to do behind finished orders), newest first
    within each; only order `number` when given. One query for the orders, one for the stores."""
    finished = case((CustomerRequest.status.in_(_FINISHED), 1), else_=0)
    query = (
        select(orders.Order, Offer, Payment, CustomerRequest.status, OrderFulfilment.ready_at)
        .join(Offer, Offer.id == orders.Order.offer_id)
        .join(Payment, Payment.id == orders.Order.payment_id)
        .join(CustomerRequest, CustomerRequest.id == orders.Order.request_id)
        .outerjoin(OrderFulfilment, OrderFulfilment.order_id == orders.Order.id)
        .where(orders.Order.vendor_id == vendor_id, Offer.vendor_id == vendor_id, orders.Order.number.is_not(None))
        .order_by(finished, orders.Order.id.desc())
        .limit(limit)
    )
    if number is not None:
        query = query.where(orders.Order.number == number)
    with db() as session:
        found = session.execute(query).all()
        stores = {o.store_id: store_by_id(session, o.store_id) for o, *_ in found if o.kind == "pickup"}
        return [
            {
                **orders.order_dict(order),
                "kind": order.kind,
                "store": stores[order.store_id].to_json() if stores.get(order.store_id) else None,
                "product_id": offer.product_id,
                "offer_id": offer.id,
                "title": offer.title,
                "price": str(payment.amount),
                "currency": payment.currency,
                "payment_status": payment.status,
                "state": _state(order, status, ready_at),
                "ready_at": utc(ready_at).isoformat(timespec="seconds") if ready_at else None,
            }
            for order, offer, payment, status, ready_at in found
        ]


def _order(session: Session, vendor_id: int, number: str) -> orders.Order:
    order = session.scalar(
        select(orders.Order).where(orders.Order.number == number, orders.Order.vendor_id == vendor_id)
    )
    if order is None:
        raise NotFound(f"You have no order {number}.", "Open your orders to see the ones to fulfil.")
    return order


def ship(
    db: sessionmaker,
    provider: PaymentProvider,
    outbox: Outbox,
    vendor_id: int,
    number: str,
    user: User,
    carrier: str,
    tracking: str,
    link: Link = Link(),
) -> None:
    """Mark the vendor's order `number` shipped with `carrier` and `tracking`; the held payment is
    captured (once) and the customer gets the receipt with the tracking number."""
    with db() as session:
        order = _order(session, vendor_id, number)
        if order.kind == "pickup":
            raise Invalid(
                f"Order {number} is collected at a store, not shipped.",
                "Mark it ready for pickup, then collected when the customer has it.",
            )
        request_id = order.request_id
    offers_service.fulfil(
        db,
        provider,
        request_id,
        user,
        outbox,
        carrier=carrier,
        tracking=tracking,
        link=link.pattern,
        secret=link.secret,
    )


def ready(db: sessionmaker, outbox: Outbox, vendor_id: int, number: str, user: User, link: Link = Link()) -> bool:
    """Mark the vendor's pickup order ready at its store and e-mail the customer where and when to
    collect it (in the same transaction). False when it was ready already (no second e-mail)."""
    with db() as session:
        order = _order(session, vendor_id, number)
        if order.kind != "pickup":
            raise Invalid(f"Order {number} is shipped, not collected.", "Mark it shipped with carrier and tracking.")
        request = session.get(CustomerRequest, order.request_id)
        if request.status != RequestStatus.PAID:
            raise Conflict(f"Order {number} is {request.status}, so it cannot be made ready for pickup.")
        fulfilment_of(session, order.id)
        session.flush()
        who = actor(user)
        marked = session.execute(  # compare-and-set: a second click changes nothing and mails nobody
            update(OrderFulfilment)
            .where(OrderFulfilment.order_id == order.id, OrderFulfilment.ready_at.is_(None))
            .values(ready_at=now(), ready_by=who)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:
            session.rollback()
            return False
        store = store_by_id(session, order.store_id)
        offer = session.get(Offer, order.offer_id)
        audit.record(session, who, "order.ready_for_pickup", request.id, order=number, store_id=order.store_id)
        mail = {
            "number": number,
            "title": offer.title,
            "vendor": offer.vendor,
            "store": store.to_json()
            if store
            else {key: "" for key in ("name", "address", "postcode", "city")} | {"opening_hours": ""},
            "link": link_for(request, link.pattern, link.secret) if link.pattern else "",
        }
        outbox.send_template(request.email, "order_ready_for_pickup", mail, session=session)
        session.commit()
        return True


def collected(
    db: sessionmaker,
    provider: PaymentProvider,
    outbox: Outbox,
    vendor_id: int,
    number: str,
    user: User,
    link: Link = Link(),
) -> None:
    """The customer collected the vendor's pickup order: the held payment is captured (once) and the
    receipt mailed. Only after "ready for pickup"."""
    with db() as session:
        order = _order(session, vendor_id, number)
        if order.kind != "pickup":
            raise Invalid(f"Order {number} is shipped, not collected.", "Mark it shipped with carrier and tracking.")
        intent = session.get(OrderFulfilment, order.id)
        if intent is None or intent.ready_at is None:
            raise Conflict(f"Order {number} is not ready for pickup yet.", "Mark it ready first; nothing was charged.")
        request_id = order.request_id
    offers_service.fulfil(
        db, provider, request_id, user, outbox, carrier="", tracking="", link=link.pattern, secret=link.secret
    )

"""Fulfilment as steps that survive a crash: what was asked is written before the money moves.

Marking an order shipped (the vendor, or the operator) is three steps (`offers_service.fulfil`):

1. Intent: the shipment (carrier, tracking, who asked) is kept in `order_fulfilments`, in its own
   commit, before the provider is called.
2. Capture, under the payment's own idempotency key (`capture:{payment_id}`): two clicks, or the
   vendor and the operator at once, reach the provider with the same key and the customer is charged
   once. The payment is marked `captured` by a compare-and-set, so only one caller audits it.
3. Completion (`complete`): the request `paid` → `fulfilled` (compare-and-set), the order's tracking,
   the receipt e-mailed through the outbox, in one transaction. A second caller finds the request
   fulfilled already and does nothing.

A crash between 2 and 3 leaves a captured payment on a `paid` request: the next click resumes at 3
(no second capture), and `finish_captured` (run by the payment reconciliation, `payment_saga.reconcile`)
completes it with the intent of step 1, so it resolves itself even when nobody clicks again.

A pickup order is "ready for pickup" first (`ready_at`: the customer is e-mailed the store's address
and opening hours; no money moves, since the customer may never come) and is captured when the vendor
marks it collected: the goods are in the customer's hands, the same moment as a shipment's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from catalog.db import Base
from mail.outbox import Outbox
from workflow import orders
from workflow.errors import Conflict
from workflow.models import CustomerRequest, Offer, Payment, now
from workflow.payments import PaymentProvider
from workflow.states import RequestStatus


class OrderFulfilment(Base):
    """What was asked to fulfil an order (step 1), and when a pickup order was made ready."""

    __tablename__ = "order_fulfilments"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(80), default="")
    tracking: Mapped[str] = mapped_column(String(80), default="")
    requested_by: Mapped[str] = mapped_column(String(120), default="")
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ready_by: Mapped[str] = mapped_column(String(120), default="")
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def fulfilment_of(session: Session, order_id: int) -> OrderFulfilment:
    """The order's fulfilment row, created when there is none yet. `INSERT ... ON CONFLICT DO NOTHING`
    rather than look-then-add: two clicks at once (or the vendor and the operator) would both add one
    and the second would fail on the primary key; this way the second waits for the first and uses it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(OrderFulfilment).values(order_id=order_id).on_conflict_do_nothing())
    found = session.get(OrderFulfilment, order_id, populate_existing=True)
    assert found is not None  # just inserted, or there already
    return found


def is_ready(session: Session, order: orders.Order) -> bool:
    """Whether the vendor has said the (pickup) order is ready to collect."""
    found = session.get(OrderFulfilment, order.id)
    return found is not None and found.ready_at is not None


def record_intent(session: Session, order: orders.Order | None, carrier: str, tracking: str, who: str) -> None:
    """Step 1, in the caller's transaction: the shipment as asked, for `finish_captured` to use."""
    if order is None:
        return
    intent = fulfilment_of(session, order.id)
    intent.carrier, intent.tracking, intent.requested_by, intent.requested_at = carrier, tracking, who, now()


def complete(
    sessions: sessionmaker,
    request_id: int,
    who: str,
    outbox: Outbox,
    carrier: str,
    tracking: str,
    *,
    link: str = "",
    secret: str = "",
) -> bool:
    """Step 3 for a request whose payment is captured: fulfilled, tracked, the receipt mailed; one
    transaction. False when someone else completed it first (nothing done)."""
    from workflow.lifecycle import move_request  # not at the top: workflow.models imports this module
    from workflow.requests_service import link_for

    with sessions() as session:
        request = session.get(CustomerRequest, request_id)
        if request is None or request.status != RequestStatus.PAID:
            return False
        try:
            move_request(session, request, RequestStatus.FULFILLED, who, carrier=carrier, tracking=tracking)
        except Conflict:
            return False  # completed meanwhile by the other caller
        orders.mark_shipped(session, request_id, carrier, tracking)
        offer = session.get(Offer, request.accepted_offer_id)
        payment = session.scalar(select(Payment).where(Payment.live_request_id == request_id))
        amount = payment.amount if payment is not None else offer.price
        receipt = {"amount": amount, "currency": offer.currency, "title": offer.title, "vendor": offer.vendor}
        page = link_for(request, link, secret) if link else ""
        mail = {
            **receipt,
            "payment_id": payment.id if payment is not None else None,
            "order": orders.receipt(session, request),
            "link": page,
        }
        outbox.send_template(request.email, "order_fulfilled", mail, session=session)
        session.commit()
        return True


def finish_captured(sessions: sessionmaker, provider: PaymentProvider, outbox: Outbox | None) -> int:
    """Complete every `paid` request whose payment was captured before a crash, with the shipment
    recorded in step 1: captured as recorded, or still `authorised` here while the provider, asked by
    the payment's key, says it was captured (the crash came before the record). Safe to run anywhere,
    any time: recording and completion are compare-and-sets. Without an outbox (no receipt to send)
    it waits for a run that has one. Returns how many it completed."""
    if outbox is None:
        return 0
    with sessions() as session:
        stuck = session.execute(
            select(Payment, OrderFulfilment)
            .join(CustomerRequest, CustomerRequest.id == Payment.live_request_id)
            .join(orders.Order, orders.Order.payment_id == Payment.id)
            .outerjoin(OrderFulfilment, OrderFulfilment.order_id == orders.Order.id)
            .where(CustomerRequest.status == RequestStatus.PAID.value, Payment.status.in_(("captured", "authorised")))
        ).all()
        work = [
            (p.id, p.request_id, p.status, p.idempotency_key, p.amount, f.carrier, f.tracking, f.requested_by)
            for p, f in stuck
            if p.status == "captured" or (f is not None and f.requested_at is not None)
        ]
    done = 0
    for payment_id, request_id, status, key, amount, carrier, tracking, who in work:
        if status == "authorised" and not _captured_at_provider(sessions, provider, payment_id, key, amount):
            continue  # not captured: the vendor's next click does it
        if complete(sessions, request_id, who or "system", outbox, carrier or "", tracking or ""):
            done += 1
    return done


def _captured_at_provider(sessions: sessionmaker, provider: PaymentProvider, payment_id: int, key: str, amount) -> bool:  # type: ignore[no-untyped-def]
    """Whether the provider captured the hold (asked by the authorisation's key); recorded if so."""
    from workflow import audit

    try:
        found = provider.find_authorisation(key)
    except Exception:  # asked again at the next run
        return False
    if found is None or found.status != "captured":
        return False
    with sessions() as session:
        recorded = session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.status.in_(("authorised", "capture_failed")))
            .values(status="captured", updated_at=now(), message="Captured (found by reconciliation).")
            .execution_options(synchronize_session=False)
        )
        if recorded.rowcount == 1:
            request_id = session.scalar(select(Payment.request_id).where(Payment.id == payment_id))
            audit.record(session, "system", "payment.captured", request_id, payment_id=payment_id, amount=str(amount))
        session.commit()
    return True

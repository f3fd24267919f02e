"""The payment saga: accepting an offer moves money in steps, and every step leaves a record from
which the next one, or reconciliation after a crash, can finish the job.

1. Intent (`offers_service.accept_offer`): in one transaction the offer is checked still open, the
   request becomes `accepted` (compare-and-set) and a `pending` payment row records the idempotency
   key, the amount and a digest of the request.
2. The provider authorises, under the payment's idempotency key.
3. The outcome is recorded in its own commit (`settle`): `authorised` with the provider's
   reference, or declined. A provider that did not answer is asked what became of the key
   (`find_authorisation`).
4. Completion: the offer accepted, the others superseded, the request `paid`.

Any failure after the hold exists voids it (`void_payment`) and releases the request (back to its
offers, or to the queue when none is open). A void that fails is recorded as `void_failed`, never
as `voided`, and retried. `reconcile` finishes what a crash or an outage left: `pending` payments
past a grace period, holds nobody relies on, failed voids and requests stuck in `accepted`. The app
runs it at start-up and periodically; `vitrine payments reconcile` runs it by hand.

Every provider call that raises is logged (logger `vitrine.payments`) and turned into `NoAnswer`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.metrics import PAYMENT_OUTCOMES
from mail.outbox import Outbox, notify_staff
from workflow import audit, fulfilment, orders, pairs
from workflow.errors import Conflict, ServiceError
from workflow.lifecycle import move_offer, move_request
from workflow.models import CustomerRequest, Payment, now, utc
from workflow.payments import PaymentOutcome, PaymentProvider
from workflow.states import OfferStatus, RequestStatus

log = logging.getLogger("vitrine.payments")
T = TypeVar("T")

#: Payment states in which the provider may hold money for the customer.
HELD = ("authorised", "void_failed")
#: How long a `pending` payment may belong to an accept still in flight (another process) before
#: reconciliation settles it.
DEFAULT_GRACE_S = 120.0


class NoAnswer(Exception):
    """The provider raised instead of answering; whether the call took effect is unknown."""


def ask(what: str, call: Callable[..., T], *args: object) -> T:
    """`call(*args)` on the provider; an exception is logged with its traceback and raised as NoAnswer."""
    try:
        return call(*args)
    except Exception as exc:
        log.warning("payment provider: %s did not answer (%s: %s)", what, type(exc).__name__, exc, exc_info=True)
        raise NoAnswer(f"{type(exc).__name__}: {exc}") from exc


def request_digest(secret: str, offer_id: int, card: str) -> str:
    """A keyed hash of what an accept asked for, kept with its payment: a replay of the idempotency
    key must ask for the same thing. Keyed by the app's secret, so the card cannot be guessed from it."""
    key = f"vitrine accept digest:{secret}".encode()
    return hmac.new(key, f"{offer_id}:{card}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Settled:
    state: str  # paid | declined | voided | unknown (the provider did not answer; retried later)
    message: str = ""


def settle(
    sessions: sessionmaker,
    provider: PaymentProvider,
    payment_id: int,
    outcome: PaymentOutcome | None,
    who: str,
    outbox: Outbox | None = None,
) -> Settled:
    """`_settle`, counted by outcome in `vitrine_payment_outcomes_total` (catalog.metrics)."""
    settled = _settle(sessions, provider, payment_id, outcome, who, outbox)
    PAYMENT_OUTCOMES.labels(settled.state).inc()
    return settled


def _settle(
    sessions: sessionmaker,
    provider: PaymentProvider,
    payment_id: int,
    outcome: PaymentOutcome | None,
    who: str,
    outbox: Outbox | None = None,
) -> Settled:
    """Steps 3-4 for a `pending` payment: record the provider's `outcome` (None: it did not answer,
    so ask it by the idempotency key), then complete the accept, or void the hold and release the
    request when that is no longer possible. Only the caller that moves the payment off `pending`
    goes on; another finds the state already settled."""
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        if payment.status != "pending":
            return _settled_already(sessions, provider, payment_id, outcome, who)
        key = payment.idempotency_key
    if outcome is None:
        try:
            outcome = ask("find_authorisation", provider.find_authorisation, key)
        except NoAnswer as exc:
            _leave_unsettled(sessions, payment_id, who, str(exc))
            return Settled("unknown", "The payment service did not answer.")
        if outcome is None:
            outcome = PaymentOutcome(False, "failed", message="The payment service never received the authorisation.")
    if not outcome.ok or outcome.status != "authorised":
        return _record_refusal(sessions, payment_id, outcome, who)
    if not _record(sessions, payment_id, "authorised", outcome, who):
        return _settled_already(sessions, provider, payment_id, outcome, who)
    return finish(sessions, provider, payment_id, who, outbox)


def _settled_already(
    sessions: sessionmaker, provider: PaymentProvider, payment_id: int, outcome: PaymentOutcome | None, who: str
) -> Settled:
    """Someone else (reconciliation, after the grace period) settled the payment first. If they found
    no hold but this caller brings one (the provider answered late), that hold is recorded and voided."""
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        late_hold = (
            outcome is not None
            and outcome.ok
            and outcome.status == "authorised"
            and payment.status in ("failed", "declined")
            and not payment.provider_ref
        )
        if not late_hold:
            return Settled(_state_name(payment.status), payment.message)
        payment.status, payment.provider_ref, payment.live_request_id = "authorised", outcome.reference, None
        payment.updated_at = now()
        session.commit()
    log.warning("payment %s: the provider answered after the payment was settled; voiding its hold", payment_id)
    void_payment(sessions, provider, payment_id, who, "authorised after the payment was settled")
    return Settled("voided")


def finish(
    sessions: sessionmaker, provider: PaymentProvider, payment_id: int, who: str, outbox: Outbox | None = None
) -> Settled:
    """Step 4 for an `authorised` payment of an `accepted` request: complete it, or, on any failure
    (the offer was withdrawn, declined or expired meanwhile; anything else), void the hold and
    release the request."""
    try:
        _complete(sessions, payment_id, outbox)
        return Settled("paid")
    except Exception as exc:
        if isinstance(exc, ServiceError):
            log.info("payment %s: the accept cannot complete (%s); voiding the hold", payment_id, exc)
        else:
            log.exception("payment %s: completing the accept failed; voiding the hold", payment_id)
        reason = getattr(exc, "message", type(exc).__name__)
    if _relied_on(sessions, payment_id):  # someone else completed it meanwhile
        return Settled("paid")
    state = void_payment(sessions, provider, payment_id, who, f"accept not completed: {reason}")
    release_for(sessions, payment_id, who, "the accept could not be completed")
    return Settled("voided" if state != "captured" else "paid", reason)


def _complete(sessions: sessionmaker, payment_id: int, outbox: Outbox | None) -> None:
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        request = session.get(CustomerRequest, payment.request_id)
        if (
            payment.status != "authorised"
            or payment.live_request_id != request.id
            or request.status != RequestStatus.ACCEPTED
            or request.accepted_offer_id != payment.offer_id
        ):
            raise Conflict("The request changed while the card was being authorised.")
        offer = next(o for o in request.offers if o.id == payment.offer_id)
        if not move_offer(session, offer, OfferStatus.ACCEPTED, "customer"):
            raise Conflict("The offer changed while the card was being authorised.")
        pairs.record_accepted(session, request, offer)
        for other in request.offers:
            if other.id != offer.id and other.status == OfferStatus.SENT:
                move_offer(session, other, OfferStatus.SUPERSEDED, "system")
        move_request(session, request, RequestStatus.PAID, "system", payment_id=payment_id)
        order = orders.number_order(session, payment_id)  # the delivery kept with the intent becomes the order
        if outbox is not None:  # in the same transaction: mailed exactly when the request is paid
            mail = {"amount": payment.amount, "currency": payment.currency}
            confirmed = {**mail, "title": offer.title, "vendor": offer.vendor, "order": orders.order_dict(order)}
            outbox.send_template(
                request.email, "order_confirmed" if order else "payment_authorised", confirmed, session=session
            )
            staff = {**mail, "request_id": request.id, "payment_id": payment_id, "title": offer.title}
            notify_staff(outbox, "staff_payment", {**staff, "vendor": offer.vendor}, session=session)
        session.commit()


def void_payment(sessions: sessionmaker, provider: PaymentProvider, payment_id: int, who: str, reason: str) -> str:
    """Release the hold of an `authorised` (or `void_failed`) payment and record what happened:
    `voided`; `void_failed` (the hold may still be there: reconciliation retries, with a fresh key
    each attempt); or what the provider says the hold became (captured, refunded). The payment stops
    being live for its request unless its money was taken. Returns the recorded status."""
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        if payment.status not in HELD:
            return payment.status
        reference, attempts, key = payment.provider_ref, payment.attempts, payment.idempotency_key
    void_key = f"void:{payment_id}" if attempts == 0 else f"void:{payment_id}:{attempts}"
    try:
        outcome = ask("void", provider.void, reference, void_key)
    except NoAnswer as exc:
        outcome = PaymentOutcome(False, "failed", reference, f"The payment service did not answer the void ({exc}).")
    else:
        if not outcome.ok:
            log.warning("payment %s: the provider refused the void (%s)", payment_id, outcome.message)
    status = "voided" if outcome.ok else _hold_after_failed_void(provider, key)
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        payment.status, payment.updated_at, payment.message = status, now(), outcome.message
        if status != "captured":
            payment.live_request_id = None
        if status == "void_failed":
            payment.attempts += 1
            log.warning("payment %s: the hold %s was not released (%s); retried later", payment_id, reference, reason)
        audit.record(session, who, f"payment.{status}", payment.request_id, payment_id=payment_id, reason=reason)
        session.commit()
    return status


def _hold_after_failed_void(provider: PaymentProvider, key: str) -> str:
    """A void refused or unanswered: the hold may be gone already (voided by this or an earlier
    attempt whose answer was lost, or lapsed) or its money taken; only a hold still there (or one
    the provider cannot tell about now) is a failed void."""
    try:
        found = ask("find_authorisation", provider.find_authorisation, key)
    except NoAnswer:
        return "void_failed"
    if found is None or not found.ok:
        return "voided"  # no hold was ever made under this key
    if found.status in ("voided", "captured", "refunded"):
        return found.status
    return "void_failed"


def release(session: Session, request: CustomerRequest, payment: Payment, who: str, reason: str) -> bool:
    """Put a request that was `accepted` for `payment` back where the customer can act again: its
    open offers, or the queue when none is open. False (and nothing done) if the request has moved
    on, or another payment is live for it."""
    if request.status != RequestStatus.ACCEPTED or request.accepted_offer_id != payment.offer_id:
        return False
    live = session.scalar(select(Payment).where(Payment.live_request_id == request.id))
    if live is not None and live.id != payment.id:
        return False
    _back_to_offers(session, request, who, reason)
    return True


def _back_to_offers(session: Session, request: CustomerRequest, who: str, reason: str) -> None:
    move_request(session, request, RequestStatus.OFFERS_SENT, who, values={"accepted_offer_id": None}, reason=reason)
    if not any(o.status == OfferStatus.SENT for o in request.offers):
        move_request(session, request, RequestStatus.QUEUED, who, values={"queued_at": now()}, reason="no open offers")


def release_for(sessions: sessionmaker, payment_id: int, who: str, reason: str) -> bool:
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        request = session.get(CustomerRequest, payment.request_id)
        try:
            released = release(session, request, payment, who, reason)
        except Conflict:
            return False  # it moved meanwhile: whoever moved it owns it now
        session.commit()
        return released


def _record(
    sessions: sessionmaker, payment_id: int, status: str, outcome: PaymentOutcome, who: str, live: bool = True
) -> bool:
    """Compare-and-set the payment from `pending` to `status` with the provider's reference and
    message, audited in the same transaction; False if it was not pending any more."""
    values: dict = {"status": status, "message": outcome.message, "updated_at": now()}
    if outcome.reference:
        values["provider_ref"] = outcome.reference
    if not live:
        values["live_request_id"] = None
    with sessions() as session:
        result = session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.status == "pending")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            session.rollback()
            return False
        payment = session.get(Payment, payment_id, populate_existing=True)
        detail = {"amount": str(payment.amount), "test": payment.test} if status == "authorised" else {}
        audit.record(session, who, f"payment.{status}", payment.request_id, payment_id=payment_id, **detail)
        session.commit()
        return True


def _record_refusal(sessions: sessionmaker, payment_id: int, outcome: PaymentOutcome, who: str) -> Settled:
    """No hold was made (declined, refused, never received), or it is gone already: the payment stops
    being live and the request goes back to its offers."""
    status = outcome.status if outcome.status in ("declined", "voided", "refunded", "captured") else "failed"
    if outcome.ok and status == "captured":  # taken by someone else: keep it live and tell
        log.error("payment %s: the provider says the authorisation was captured; left for an admin", payment_id)
    if not _record(sessions, payment_id, status, outcome, who, live=status == "captured"):
        with sessions() as session:
            return Settled(_state_name(session.get(Payment, payment_id).status))
    log.info("payment %s: %s (%s)", payment_id, status, outcome.message)
    if status != "captured":
        release_for(sessions, payment_id, who, f"payment {status}")
    state = "declined" if status in ("declined", "failed") else "paid" if status == "captured" else "voided"
    return Settled(state, outcome.message)


def _leave_unsettled(sessions: sessionmaker, payment_id: int, who: str, why: str) -> None:
    """The provider answered neither the call nor the question: the customer may try again at once
    (the payment stops being live, the request goes back to its offers) and reconciliation settles
    the payment, voiding any hold it finds."""
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        if payment.status != "pending":
            return
        payment.live_request_id, payment.updated_at = None, now()
        payment.message = f"The payment service did not answer ({why}); settled by reconciliation."
        audit.record(session, who, "payment.unanswered", payment.request_id, payment_id=payment_id)
        session.commit()
    release_for(sessions, payment_id, who, "the payment service did not answer")


def _relied_on(sessions: sessionmaker, payment_id: int) -> bool:
    """Whether the payment is the live one of a paid (or later) request."""
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        request = session.get(CustomerRequest, payment.request_id)
        return payment.live_request_id == request.id and request.status in (
            RequestStatus.PAID,
            RequestStatus.FULFILLED,
            RequestStatus.CLOSED,
        )


def _state_name(status: str) -> str:
    if status in ("authorised", "captured", "capture_failed", "refunded"):
        return "paid"
    if status in ("voided", "void_failed"):
        return "voided"
    if status == "pending":
        return "unknown"
    return "declined"


def reconcile(
    sessions: sessionmaker,
    provider: PaymentProvider,
    grace_s: float = DEFAULT_GRACE_S,
    outbox: Outbox | None = None,
) -> dict[str, int]:
    """Settle what crashes and outages left, so that no hold stays authorised without a paid request
    relying on it and no request stays `accepted`:

    - `pending` payments (past `grace_s`, or given up by their accept): asked by key, then completed,
      voided or marked declined;
    - `authorised` payments of requests stuck in `accepted` past `grace_s`: completed, or voided;
    - `authorised` payments no request relies on (not live, or the request moved on): voided;
    - `void_failed` payments: voided again;
    - requests in `accepted` past `grace_s` without a payment in flight: back to their offers.
    - `paid` requests whose payment was captured before a crash: fulfilled (`workflow.fulfilment`).

    Safe to run at any time and in several processes at once (every change is a compare-and-set or
    keyed by an idempotency key). Returns counts by outcome."""
    cutoff = now() - timedelta(seconds=grace_s)
    counts: Counter[str] = Counter()
    with sessions() as session:
        pending = [
            p.id
            for p in session.scalars(select(Payment).where(Payment.status == "pending"))
            if p.live_request_id is None or utc(p.updated_at) <= cutoff
        ]
        held = session.execute(
            select(Payment, CustomerRequest)
            .join(CustomerRequest, CustomerRequest.id == Payment.request_id)
            .where(Payment.status.in_(HELD))
        ).all()
        stuck_authorised = [
            p.id
            for p, r in held
            if p.status == "authorised"
            and p.live_request_id == r.id
            and r.status == RequestStatus.ACCEPTED
            and utc(p.updated_at) <= cutoff
        ]
        unwanted = [
            p.id
            for p, r in held
            if p.status == "void_failed"
            or p.live_request_id != r.id
            or r.status not in (RequestStatus.ACCEPTED, RequestStatus.PAID)
        ]
        stuck_requests = [
            r.id
            for r in session.scalars(select(CustomerRequest).where(CustomerRequest.status == RequestStatus.ACCEPTED))
            if utc(r.updated_at) <= cutoff
        ]
    for payment_id in pending:
        counts[f"pending_{settle(sessions, provider, payment_id, None, 'system', outbox).state}"] += 1
    for payment_id in stuck_authorised:
        counts[f"accepted_{finish(sessions, provider, payment_id, 'system', outbox).state}"] += 1
    for payment_id in unwanted:
        counts[f"hold_{void_payment(sessions, provider, payment_id, 'system', 'no request relies on it')}"] += 1
    for request_id in stuck_requests:
        if _release_stuck(sessions, request_id, cutoff):
            counts["request_released"] += 1
    if completed := fulfilment.finish_captured(sessions, provider, outbox):  # captured, but the crash came first
        counts["fulfilment_completed"] += completed
    if counts:
        log.info("payments reconciled: %s", dict(counts))
    return dict(counts)


def _release_stuck(sessions: sessionmaker, request_id: int, cutoff) -> bool:  # type: ignore[no-untyped-def]
    """Release an `accepted` request that no payment in flight (pending or authorised) belongs to."""
    with sessions() as session:
        request = session.get(CustomerRequest, request_id)
        if request.status != RequestStatus.ACCEPTED or utc(request.updated_at) > cutoff:
            return False
        in_flight = session.scalar(
            select(Payment).where(
                Payment.request_id == request_id,
                Payment.live_request_id == request_id,
                Payment.status.in_(("pending", "authorised")),
            )
        )
        if in_flight is not None:
            return False
        try:
            _back_to_offers(session, request, "system", "no payment in progress")
        except Conflict:
            return False
        session.commit()
        return True


async def reconcile_every(
    sessions: sessionmaker,
    provider: PaymentProvider,
    grace_s: float,
    every_s: float,
    outbox: Outbox | None = None,
) -> None:
    """`reconcile` at once (start-up), then every `every_s` seconds (never again when it is 0); a
    failed run is logged and retried at the next."""
    while True:
        try:
            await asyncio.to_thread(reconcile, sessions, provider, grace_s, outbox)
        except Exception:
            log.exception("payment reconciliation failed; retried at the next run")
        if every_s <= 0:
            return
        await asyncio.sleep(every_s)

"""Offers: operators send priced products; the customer declines or accepts one (and pays).

Accepting is guarded twice: the request moves offers_sent → accepted by a conditional UPDATE
(one winner among concurrent accepts), and the payment row's unique `live_request_id` lets the
database refuse a second live payment. The idempotency key makes a repeated accept return the
first outcome instead of charging again; the same key with another body is refused.

While an accept is being paid (the request is `accepted`) its offers are frozen: declining and
withdrawing one are refused (a compare-and-set on the request in the same transaction), expiring
waits. Paying is a saga (`workflow.payment_saga`): every failure after the card hold
exists voids it, and reconciliation finishes whatever a crash left.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product, ProductImage, Vendor
from catalog.money import PriceError, check_amount, parse_price
from mail.outbox import Outbox
from workflow import audit, fulfilment, offer_flags, orders, pairs, payment_saga, pickups
from workflow.claims import actor, refuse_if_held_by_other, refuse_unless_owner, require_work_right
from workflow.errors import Conflict, IdempotencyKeyReused, Invalid, NotFound, PaymentFailed
from workflow.lifecycle import move_offer, move_request
from workflow.models import CustomerRequest, Message, Offer, Payment, User, now, utc
from workflow.payment_saga import NoAnswer, ask, log
from workflow.payments import PaymentOutcome, PaymentProvider, clean_card_number
from workflow.request_tokens import token_hash
from workflow.requests_service import link_for, load_by_id, load_by_token
from workflow.states import OfferStatus, RequestStatus

MAX_NOTE = 1000
MIN_OFFER_HOURS = 0.25  # the customer needs time to see an offer at all; the error text says the same
MAX_OFFER_HOURS = 24 * 30
MAX_OFFERS = 10


@dataclass(frozen=True)
class OfferDraft:
    product_id: int
    price: str
    note: str = ""


def _price(text: str, currency: str | None = None) -> Decimal:
    """An offer's price by the one price grammar (`1,299` is 1299.00, never 1.30), rounded to the
    currency's minor unit and only then checked: `0.001` EUR or `0.4` JPY is zero and refused."""
    try:
        return parse_price(text, currency=currency, positive=True)
    except PriceError as exc:
        raise Invalid(f"Every offer needs a positive price: {exc} (write it like 39.90 or 1,299.00).") from None


def send_offers(
    sessions: sessionmaker,
    request_id: int,
    user: User,
    drafts: list[OfferDraft],
    expires_in_hours: float,
    outbox: Outbox,
    link: str,
    secret: str = "",
    pickup_stores: Mapping[int, int] | None = None,
) -> list[int]:
    """Create the offers, move the request to offers_sent and release the claim; e-mail the customer.
    `pickup_stores`: the store each offered product may be collected from ("pickup at store X"),
    recorded in the same transaction as the offers (`workflow.pickups.attach`).
    On a request whose offers are already out, the operator who sent them (or an admin) adds these
    beside them (a follow-up): the request stays `offers_sent`, unless the customer accepted meanwhile.

    Each offer is also recorded as an `offered` confirmed pair (`workflow.pairs`), in the same
    transaction; recording never makes the offer fail. The serving app then adds the request's photo
    as a customer view of each offered product (`workflow.customer_views.add_views_for_offers`)."""
    if not drafts:
        raise Invalid("Pick at least one product to offer (tick its box).")
    if len(drafts) > MAX_OFFERS:
        raise Invalid(f"Send at most {MAX_OFFERS} offers at once.")
    if not MIN_OFFER_HOURS <= expires_in_hours <= MAX_OFFER_HOURS:
        raise Invalid("Offers must expire between 15 minutes (0.25 hours) and 30 days (720 hours) from now.")
    moment = now()
    with sessions() as session:
        request = load_by_id(session, request_id)
        require_work_right(session, request, user, "send offers")
        follow_up = request.status == RequestStatus.OFFERS_SENT
        if follow_up:
            _still_open_for_offers(session, request)
        ids = []
        sent: list[Offer] = []
        for draft in drafts:
            if len(draft.note) > MAX_NOTE:
                raise Invalid(f"Keep each note under {MAX_NOTE} characters.")
            in_range = 0 < draft.product_id < 2**63  # a row id; a larger number would not even bind
            row = (
                in_range
                and session.execute(
                    select(Product, Vendor).join(Vendor).where(Product.id == draft.product_id)
                ).one_or_none()
            )
            if not row:
                raise Invalid(f"Product {draft.product_id} is no longer in the catalog; search again.")
            product, vendor = row
            if not product.active:  # its vendor took it out of search since the page was loaded
                raise Invalid(f"{product.title} was deactivated by its vendor and cannot be offered; search again.")
            price = _price(draft.price, product.currency)
            image = session.scalar(
                select(ProductImage).where(ProductImage.product_id == product.id).order_by(ProductImage.position)
            )
            offer = Offer(
                request_id=request.id,
                product_id=product.id,
                vendor_id=vendor.id,
                title=product.title,
                vendor=vendor.name,
                image_sha256=image.sha256 if image else "",
                price=price,
                currency=product.currency,
                note=draft.note.strip(),
                status=OfferStatus.SENT.value,
                expires_at=moment + timedelta(hours=expires_in_hours),
                created_by_id=user.id,
            )
            session.add(offer)
            session.flush()
            ids.append(offer.id)
            sent.append(offer)
            audit.record(session, actor(user), "offer.sent", request.id, offer_id=offer.id, price=str(price))
        if pickup_stores:
            pickups.attach(session, sent, pickup_stores)
        pairs.record_sent_offers(session, request, sent, user)
        if follow_up:
            audit.record(session, actor(user), "offers.followed_up", request.id, offers=ids)
        else:
            handling = (moment - utc(request.claimed_at)).total_seconds() if request.claimed_at else None
            move_request(
                session,
                request,
                RequestStatus.OFFERS_SENT,
                actor(user),
                values={"claimed_by_id": None, "claim_expires_at": None, "claimed_at": None, "operator_id": user.id},
                offers=ids,
                handling_s=handling,
            )
        mail = {"operator": user.name, "count": len(ids), "link": link_for(request, link, secret)}
        outbox.send_template(request.email, "offers_arrived", mail, session=session)  # goes iff this commits
        session.commit()
    return ids


def post_operator_message(
    sessions: sessionmaker, request_id: int, user: User, body: str, outbox: Outbox, link: str, secret: str = ""
) -> None:
    body = (body or "").strip()
    if not body:
        raise Invalid("Please write a message first.")
    if len(body) > 2000:
        raise Invalid("Please keep the message under 2000 characters.")
    with sessions() as session:
        request = load_by_id(session, request_id)
        refuse_if_held_by_other(session, request, user, "message the customer")
        session.add(Message(request_id=request.id, author="operator", author_name=user.name, body=body))
        audit.record(session, actor(user), "message.operator", request.id)
        mail = {"operator": user.name, "body": body, "link": link_for(request, link, secret)}
        outbox.send_template(request.email, "operator_message", mail, session=session)
        session.commit()


def _still_open_for_offers(session: Session, request: CustomerRequest) -> None:
    """Take the request's row for this transaction while it is still `offers_sent` (a compare-and-set
    that waits for a concurrent accept), so a follow-up never lands beside an accepted offer."""
    touched = session.execute(
        update(CustomerRequest)
        .where(CustomerRequest.id == request.id, CustomerRequest.status == RequestStatus.OFFERS_SENT.value)
        .values(updated_at=now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if touched != 1:
        raise Conflict("The customer has just accepted an offer; no more offers can be added.", "Reload the page.")


def _back_to_queue_if_none_left(session, request: CustomerRequest, who: str) -> None:  # type: ignore[no-untyped-def]
    if request.status == RequestStatus.OFFERS_SENT and not any(o.status == OfferStatus.SENT for o in request.offers):
        move_request(session, request, RequestStatus.QUEUED, who, values={"queued_at": now()}, reason="no open offers")


def _require_offers_open(session: Session, request: CustomerRequest) -> None:
    """Compare-and-set, in the caller's transaction, that the request still shows its offers
    (offers_sent): an offer cannot change while an accept of the request is being paid. Offers are
    written before the request everywhere (here and in accept_offer), so two writers never wait on
    each other in opposite orders."""
    changed = session.execute(
        update(CustomerRequest)
        .where(CustomerRequest.id == request.id, CustomerRequest.status == RequestStatus.OFFERS_SENT.value)
        .values(updated_at=now())
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        session.rollback()
        raise Conflict(
            "The customer is paying for an offer on this request, or the request changed meanwhile.",
            "Reload the page in a moment to see the current state.",
        )


def decline_offer(sessions: sessionmaker, token: str, offer_id: int) -> None:
    with sessions() as session:
        request = load_by_token(session, token)
        offer = _offer_of(request, offer_id)
        if not move_offer(session, offer, OfferStatus.DECLINED, "customer"):
            raise Conflict("This offer changed meanwhile.", "Reload the page.")
        _require_offers_open(session, request)
        _back_to_queue_if_none_left(session, request, "customer")
        session.commit()


def withdraw_offer(sessions: sessionmaker, request_id: int, offer_id: int, user: User) -> None:
    with sessions() as session:
        request = load_by_id(session, request_id)
        offer = _offer_of(request, offer_id)
        refuse_if_held_by_other(session, request, user, "withdraw an offer")
        refuse_unless_owner(session, request, user, offer.created_by_id, "withdraw it", "sent this offer")
        if not move_offer(session, offer, OfferStatus.WITHDRAWN, actor(user)):
            raise Conflict("This offer changed meanwhile.", "Reload the page.")
        _require_offers_open(session, request)
        _back_to_queue_if_none_left(session, request, actor(user))
        session.commit()


def _offer_of(request: CustomerRequest, offer_id: int) -> Offer:
    for offer in request.offers:
        if offer.id == offer_id:
            return offer
    raise NotFound("This request has no such offer.", "Reload the page to see the current offers.")


@dataclass(frozen=True)
class AcceptResult:
    payment_id: int
    status: str  # authorised (paid)
    replayed: bool


def accept_offer(
    sessions: sessionmaker,
    provider: PaymentProvider,
    token: str,
    offer_id: int,
    card_number: str,
    idempotency_key: str,
    outbox: Outbox | None = None,
    *,
    delivery: orders.Delivery | None,
    secret: str = "",
) -> AcceptResult:
    """Accept one offer and authorise its price (the payment saga, `workflow.payment_saga`);
    `delivery` (from `orders.check_delivery`) is kept with the payment's intent and becomes the order.

    Raises PaymentFailed on a declined card or a provider that does not answer (the offers stay
    open), Conflict when the request was already accepted or the offer changed while the card was
    being authorised (the hold is voided), Invalid for a bad card number, an unpayable price or an
    idempotency key replayed with another offer or card, NotFound for a wrong token/offer. `secret`
    (the app's) keys the digest that recognises a replay's body. A missing delivery is `DeliveryInvalid`."""
    if delivery is None:
        raise orders.DeliveryInvalid("delivery", "Please give a delivery address before paying.")
    try:
        card = clean_card_number(card_number)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if not idempotency_key or len(idempotency_key) > 150:
        raise Invalid("A payment needs an idempotency key of 1-150 characters.")
    expire_offers(sessions, token=token)
    with sessions() as session:
        request = load_by_token(session, token)
        offer = _offer_of(request, offer_id)
        key = f"accept:{request.id}:{idempotency_key}"
        digest = payment_saga.request_digest(secret, offer.id, card)
        earlier = session.scalar(select(Payment).where(Payment.idempotency_key == key))
        if earlier is not None:
            return _replay(earlier, digest, offer.id, card)
        if offer.status != OfferStatus.SENT:
            raise Conflict(
                f"This offer is {offer.status} and can no longer be accepted.",
                "Nothing was charged. Reload the page to see the current offers.",
            )
        try:
            amount = check_amount(offer.price, offer.currency)
        except PriceError as exc:
            raise Invalid(
                f"This offer cannot be paid: its price {exc}.",
                "Nothing was charged. Ask your operator for a new offer.",
            ) from None
        # Step 1, the intent: the offer still open, the request accepted, a pending payment; one transaction.
        still_open = session.execute(
            update(Offer)
            .where(Offer.id == offer.id, Offer.status == OfferStatus.SENT.value)
            .values(status=OfferStatus.SENT.value)
            .execution_options(synchronize_session=False)
        )
        if still_open.rowcount != 1:
            session.rollback()
            raise Conflict("This offer changed meanwhile.", "Nothing was charged. Reload the page.")
        if offer_flags.is_flagged(session, offer.id):  # the vendor said it is gone: refused before money moves
            session.rollback()
            raise Conflict(
                "The shop says this product is no longer available, so this offer cannot be accepted.",
                "Nothing was charged. Choose another offer, or ask your operator for something similar.",
            )
        try:
            move_request(session, request, RequestStatus.ACCEPTED, "customer", values={"accepted_offer_id": offer.id})
        except Conflict:
            raise Conflict(
                "An offer on this request has already been accepted, or the request changed meanwhile.",
                "Nothing was charged by this attempt. Reload the page to see the current state.",
            ) from None
        payment = Payment(
            request_id=request.id,
            offer_id=offer.id,
            live_request_id=request.id,
            idempotency_key=key,
            request_digest=digest,
            provider=provider.name,
            test=provider.is_test,
            amount=amount,
            currency=offer.currency,
            card_last4=card[-4:],
            status="pending",
        )
        session.add(payment)
        try:
            session.flush()
            orders.record_intent(session, payment, offer, delivery)  # a crash after the hold keeps the address
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict("A payment for this request is already under way.", "Nothing more was charged.") from None
        payment_id, currency = payment.id, offer.currency
    # Step 2, the provider; steps 3-4 (record, complete or void) in the saga.
    try:
        outcome: PaymentOutcome | None = ask("authorise", provider.authorise, amount, currency, card, key)
    except NoAnswer:
        outcome = None
    settled = payment_saga.settle(sessions, provider, payment_id, outcome, "customer", outbox)
    if settled.state == "paid":
        return AcceptResult(payment_id, "authorised", replayed=False)
    if settled.state == "declined":
        raise PaymentFailed(settled.message or "The card was declined.", "Nothing was charged. Try another card.")
    if settled.state == "voided":
        raise Conflict(
            "This offer changed while your card was being authorised, so the payment was cancelled.",
            "Nothing was charged: the hold on your card was released. Reload the page to see the current offers.",
        )
    raise PaymentFailed(
        "The payment service did not answer.",
        "Nothing was charged: any hold on your card is released automatically. Try again in a minute.",
    )


def _replay(payment: Payment, digest: str, offer_id: int, card: str) -> AcceptResult:
    """The first outcome of an accept repeated with its idempotency key, if it asks for the same
    thing (a row from before digests is compared by offer and the card's last four digits)."""
    same = (
        hmac.compare_digest(payment.request_digest, digest)
        if payment.request_digest
        else (payment.offer_id == offer_id and payment.card_last4 == card[-4:])
    )
    if not same:
        raise IdempotencyKeyReused(
            "This payment attempt (its Idempotency-Key) was already made with another card or for another offer.",
            "Nothing more was charged. Reload the page and try again (a program: send a new Idempotency-Key).",
        )
    if payment.status == "pending":
        raise Conflict("This payment is still being processed.", "Wait a moment and reload the page.")
    if payment.status == "declined" or payment.status == "failed":
        raise PaymentFailed(payment.message or "The card was declined.", "Nothing was charged. Try another card.")
    if payment.status in ("voided", "void_failed"):
        raise Conflict("This payment was cancelled and the hold on the card released.", "Reload the page.")
    return AcceptResult(payment.id, payment.status, replayed=True)


def live_payment(session, request_id: int) -> Payment | None:  # type: ignore[no-untyped-def]
    return session.scalar(select(Payment).where(Payment.live_request_id == request_id))


def fulfil(
    sessions: sessionmaker,
    provider: PaymentProvider,
    request_id: int,
    user: User,
    outbox: Outbox,
    *,
    carrier: str,
    tracking: str,
    link: str = "",
    secret: str = "",
) -> None:
    """Capture the authorised payment and mark the request fulfilled, shipped with `carrier` and
    `tracking` (both required, checked before any money moves); the customer is e-mailed the receipt
    with both (`link`/`secret`: the request page's address pattern, for the receipt's address).
    The operator's and the vendor's way; in steps that survive a crash (`workflow.fulfilment`): a
    payment captured already (a crash, or the other party at once) is completed, never captured again."""
    with sessions() as session:
        request = load_by_id(session, request_id)
        if request.status == RequestStatus.FULFILLED:
            raise Conflict("This order is fulfilled already.", "Nothing more was charged.")
        if request.status != RequestStatus.PAID:
            raise Conflict(f"Only a paid request can be fulfilled; this one is {request.status}.")
        order = orders.order_of(session, request.id)
        pickup = order is not None and order.kind == "pickup"
        carrier, tracking = orders.check_shipment(carrier, tracking, pickup=pickup)
        if pickup and not fulfilment.is_ready(session, order):
            # The money for a pickup moves when the goods are handed over, after the customer was told
            # where to collect them ("ready for pickup", the vendor's step): never before.
            raise Conflict(
                "This pickup order is not ready for pickup yet.",
                "The vendor marks it ready (the customer is e-mailed the store), then collected; nothing was charged.",
            )
        payment = live_payment(session, request.id)
        if payment is None or payment.status not in ("authorised", "capture_failed", "captured"):
            raise Conflict("There is no authorised payment to capture.")
        reference, amount, payment_id, captured = payment.provider_ref, payment.amount, payment.id, payment.status
        fulfilment.record_intent(session, order, carrier, tracking, actor(user))  # step 1, before money moves
        session.commit()
    if captured == "captured":  # a crash (or the other party) took the money already: complete only
        fulfilment.complete(sessions, request_id, actor(user), outbox, carrier, tracking, link=link, secret=secret)
        return
    try:
        # The key is the payment's: a capture repeated after a lost answer never charges twice.
        outcome = ask("capture", provider.capture, reference, amount, f"capture:{payment_id}")
    except NoAnswer as exc:
        _note(sessions, payment_id, f"The payment service did not answer the capture ({exc}).", actor(user))
        raise PaymentFailed(
            "The payment service did not answer the capture.",
            "The order was not marked fulfilled. Try again in a minute: a repeated capture never charges twice.",
        ) from None
    if not outcome.ok:
        with sessions() as session:
            payment = session.get(Payment, payment_id)
            payment.updated_at, payment.message = now(), outcome.message
            log.warning("payment %s: capture refused (%s)", payment_id, outcome.message)
            payment.status = "capture_failed"
            audit.record(session, actor(user), "payment.capture_failed", request_id, payment_id=payment_id)
            session.commit()
        raise PaymentFailed(
            f"The capture was refused: {outcome.message}",
            "The order was not marked fulfilled. Contact the customer about another way to pay.",
        )
    with sessions() as session:
        recorded = session.execute(  # compare-and-set: of two callers at once, one records (and audits) it
            update(Payment)
            .where(Payment.id == payment_id, Payment.status.in_(("authorised", "capture_failed")))
            .values(status="captured", updated_at=now(), message=outcome.message)
            .execution_options(synchronize_session=False)
        )
        if recorded.rowcount == 1:
            detail = {"payment_id": payment_id, "amount": str(amount)}
            audit.record(session, actor(user), "payment.captured", request_id, **detail)
        session.commit()  # the money is taken: recorded before anything else can fail
    fulfilment.complete(sessions, request_id, actor(user), outbox, carrier, tracking, link=link, secret=secret)


def close(sessions: sessionmaker, request_id: int, user: User) -> None:
    with sessions() as session:
        request = load_by_id(session, request_id)
        refuse_if_held_by_other(session, request, user, "close it")
        move_request(session, request, RequestStatus.CLOSED, actor(user))
        session.commit()


def refund(sessions: sessionmaker, provider: PaymentProvider, request_id: int, user: User) -> None:
    """Refund a captured payment in full (admins only)."""
    if user.role != "admin":
        raise Conflict("Only an admin can refund a payment.")
    with sessions() as session:
        payment = live_payment(session, request_id)
        if payment is None or payment.status != "captured":
            raise Conflict("There is no captured payment to refund on this request.")
        reference, amount, payment_id = payment.provider_ref, payment.amount, payment.id
    try:
        outcome = ask("refund", provider.refund, reference, amount, f"refund:{payment_id}")
    except NoAnswer as exc:
        _note(sessions, payment_id, f"The payment service did not answer the refund ({exc}).", actor(user))
        raise PaymentFailed(
            "The payment service did not answer the refund.",
            "Try again in a minute: a repeated refund never pays back twice.",
        ) from None
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        payment.updated_at, payment.message = now(), outcome.message
        if not outcome.ok:
            log.warning("payment %s: refund refused (%s)", payment_id, outcome.message)
            session.commit()
            raise PaymentFailed(f"The refund was refused: {outcome.message}")
        payment.status = "refunded"
        audit.record(session, actor(user), "payment.refunded", request_id, payment_id=payment_id, amount=str(amount))
        session.commit()


def _note(sessions: sessionmaker, payment_id: int, message: str, who: str) -> None:
    """Write what happened on the payment (a provider that did not answer) without changing its status."""
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        payment.updated_at, payment.message = now(), message
        audit.record(session, who, "payment.unanswered", payment.request_id, payment_id=payment_id)
        session.commit()


def expire_offers(sessions: sessionmaker, token: str | None = None) -> None:
    """Offers past their expiry become expired. A request left with none open goes back to the queue
    (its operator finds it under "Mine", any operator in the queue) with a note in its conversation,
    which stays open: the customer can still write, and the operator can send new offers. The offers
    of a request whose accept is being paid (`accepted`) wait: the customer accepted in time."""
    moment = now()
    with sessions() as session:
        query = (
            select(Offer)
            .join(CustomerRequest)
            .where(
                Offer.status == OfferStatus.SENT.value,
                Offer.expires_at < moment,
                CustomerRequest.status != RequestStatus.ACCEPTED.value,
            )
        )
        if token is not None:
            query = query.where(CustomerRequest.token_sha256 == token_hash(token))
        touched = set()
        for offer in session.scalars(query).all():
            if move_offer(session, offer, OfferStatus.EXPIRED, "system"):
                touched.add(offer.request_id)
        for request_id in touched:
            request = session.get(CustomerRequest, request_id)
            session.refresh(request)
            if request.status == RequestStatus.OFFERS_SENT and not any(
                o.status == OfferStatus.SENT for o in request.offers
            ):
                move_request(
                    session,
                    request,
                    RequestStatus.QUEUED,
                    "system",
                    values={"queued_at": moment, "claimed_by_id": None, "claim_expires_at": None},
                    reason="offers expired",
                )
                session.add(
                    Message(
                        request_id=request.id,
                        author="system",
                        body="The offers have expired. Your request is back with our operators; write here if you "
                        "still want it, and we will follow up with fresh offers.",
                    )
                )
        session.commit()


def void_lapsed_authorisations(sessions: sessionmaker, provider: PaymentProvider, ttl_hours: float) -> int:
    """Cancel the paid requests whose authorisation is older than `ttl_hours` (card holds lapse) and
    release the holds. A void that fails is recorded as `void_failed` and retried by reconciliation."""
    cutoff = now() - timedelta(hours=ttl_hours)
    with sessions() as session:
        stale = [
            (p.id, p.request_id)
            for p in session.scalars(select(Payment).where(Payment.status == "authorised", Payment.updated_at < cutoff))
        ]
    count = 0
    for payment_id, request_id in stale:
        with sessions() as session:
            request = session.get(CustomerRequest, request_id)
            if request.status == RequestStatus.PAID:
                try:
                    move_request(session, request, RequestStatus.CANCELLED, "system", reason="authorisation lapsed")
                    session.commit()
                except Conflict:
                    continue  # it moved on meanwhile (fulfilled, cancelled): leave it to whoever moved it
            elif request.status == RequestStatus.ACCEPTED:
                continue  # an accept in flight or stuck: reconciliation's part
        payment_saga.void_payment(sessions, provider, payment_id, "system", "authorisation lapsed")
        count += 1
    return count


def cancel_by_operator(
    sessions: sessionmaker, provider: PaymentProvider, request_id: int, user: User, reason: str, outbox: Outbox
) -> None:
    """Cancel a request for the customer; a held payment (authorised, not captured) is then voided.
    The request is cancelled first, so a crash or a failed void leaves a hold that reconciliation
    finds and releases (`void_failed` is retried), never a paid request without its hold."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("Please give the reason for cancelling (the customer sees it).")
    with sessions() as session:
        request = load_by_id(session, request_id)
        refuse_if_held_by_other(session, request, user, "cancel it")
        if request.status in (RequestStatus.ACCEPTED, RequestStatus.FULFILLED):
            raise Conflict(
                f"A request that is {request.status} cannot be cancelled.",
                "Wait for a payment in progress; refund a fulfilled one instead.",
            )
        payment = live_payment(session, request.id)
        held = payment.id if payment is not None and payment.status in payment_saga.HELD else None
        for offer in request.offers:
            if offer.status == OfferStatus.SENT:
                move_offer(session, offer, OfferStatus.WITHDRAWN, actor(user), reason="request cancelled")
        move_request(
            session,
            request,
            RequestStatus.CANCELLED,
            actor(user),
            values={"claimed_by_id": None, "claim_expires_at": None},
            reason=reason[:500],
        )
        session.add(
            Message(request_id=request.id, author="operator", author_name=user.name, body=f"Cancelled: {reason}")
        )
        session.commit()
        email = request.email
    released = held is not None and (
        payment_saga.void_payment(sessions, provider, held, actor(user), "request cancelled") == "voided"
    )
    outbox.send_template(email, "request_cancelled", {"operator": user.name, "reason": reason, "released": released})

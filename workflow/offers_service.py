"""Offers: operators send priced products; the customer declines or accepts one (and pays).

Accepting is guarded twice: the request moves offers_sent → accepted by a conditional UPDATE
(one winner among concurrent accepts), and the payment row's unique `live_request_id` lets the
database refuse a second live payment. The idempotency key makes a repeated accept return the
first outcome instead of charging again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from catalog.db import Product, ProductImage, Vendor
from catalog.money import PriceError, parse_price
from workflow import audit, pairs
from workflow.claims import actor, require_claim
from workflow.errors import Conflict, Invalid, NotFound, PaymentFailed
from workflow.lifecycle import move_offer, move_request
from workflow.models import CustomerRequest, Message, Offer, Payment, User, now, utc
from workflow.outbox import Outbox
from workflow.payments import PaymentProvider, clean_card_number
from workflow.requests_service import load_by_id, load_by_token
from workflow.states import OfferStatus, RequestStatus

MAX_NOTE = 1000
MAX_OFFERS = 10


@dataclass(frozen=True)
class OfferDraft:
    product_id: int
    price: str
    note: str = ""


def _price(text: str) -> Decimal:
    """An offer's price by the one price grammar: `1,299` is 1299.00, never 1.30."""
    try:
        return parse_price(text, positive=True)
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
) -> list[int]:
    """Create the offers, move the request to offers_sent and release the claim; e-mail the customer.

    Each offer is also recorded as an `offered` confirmed pair (`workflow.pairs`), in the same
    transaction; recording never makes the offer fail. The serving app then adds the request's photo
    as a customer view of each offered product (`workflow.customer_views.add_views_for_offers`)."""
    if not drafts:
        raise Invalid("Pick at least one product to offer (tick its box).")
    if len(drafts) > MAX_OFFERS:
        raise Invalid(f"Send at most {MAX_OFFERS} offers at once.")
    if not 0 < expires_in_hours <= 24 * 30:
        raise Invalid("Offers must expire between a few minutes and 30 days from now.")
    moment = now()
    with sessions() as session:
        request = load_by_id(session, request_id)
        require_claim(session, request, user)
        ids = []
        sent: list[Offer] = []
        for draft in drafts:
            if len(draft.note) > MAX_NOTE:
                raise Invalid(f"Keep each note under {MAX_NOTE} characters.")
            price = _price(draft.price)
            row = session.execute(
                select(Product, Vendor).join(Vendor).where(Product.id == draft.product_id)
            ).one_or_none()
            if row is None:
                raise Invalid(f"Product {draft.product_id} is no longer in the catalog; search again.")
            product, vendor = row
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
        pairs.record_sent_offers(session, request, sent, user)
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
        session.commit()
        email, token = request.email, request.token
    outbox.send(
        email,
        "Offers for your Vitrine request",
        f"{user.name} found {len(ids)} offer(s) for you.\n\nSee them and choose here:\n{link.format(token=token)}\n",
    )
    return ids


def post_operator_message(
    sessions: sessionmaker, request_id: int, user: User, body: str, outbox: Outbox, link: str
) -> None:
    body = (body or "").strip()
    if not body:
        raise Invalid("Please write a message first.")
    if len(body) > 2000:
        raise Invalid("Please keep the message under 2000 characters.")
    with sessions() as session:
        request = load_by_id(session, request_id)
        session.add(Message(request_id=request.id, author="operator", author_name=user.name, body=body))
        audit.record(session, actor(user), "message.operator", request.id)
        session.commit()
        email, token = request.email, request.token
    outbox.send(
        email, "A message about your Vitrine request", f"{user.name} wrote:\n\n{body}\n\n{link.format(token=token)}\n"
    )


def _back_to_queue_if_none_left(session, request: CustomerRequest, who: str) -> None:  # type: ignore[no-untyped-def]
    if request.status == RequestStatus.OFFERS_SENT and not any(o.status == OfferStatus.SENT for o in request.offers):
        move_request(session, request, RequestStatus.QUEUED, who, values={"queued_at": now()}, reason="no open offers")


def decline_offer(sessions: sessionmaker, token: str, offer_id: int) -> None:
    with sessions() as session:
        request = load_by_token(session, token)
        offer = _offer_of(request, offer_id)
        if not move_offer(session, offer, OfferStatus.DECLINED, "customer"):
            raise Conflict("This offer changed meanwhile.", "Reload the page.")
        _back_to_queue_if_none_left(session, request, "customer")
        session.commit()


def withdraw_offer(sessions: sessionmaker, request_id: int, offer_id: int, user: User) -> None:
    with sessions() as session:
        request = load_by_id(session, request_id)
        offer = _offer_of(request, offer_id)
        if not move_offer(session, offer, OfferStatus.WITHDRAWN, actor(user)):
            raise Conflict("This offer changed meanwhile.", "Reload the page.")
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
) -> AcceptResult:
    """Accept one offer and authorise its price. Raises PaymentFailed on a declined card (the offers
    stay open), Conflict when the request was already accepted, NotFound for a wrong token/offer."""
    try:
        card = clean_card_number(card_number)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if not idempotency_key or len(idempotency_key) > 150:
        raise Invalid("A payment needs an idempotency key of 1-150 characters.")
    key = f"accept:{offer_id}:{idempotency_key}"
    expire_offers(sessions, token=token)
    with sessions() as session:
        request = load_by_token(session, token)
        offer = _offer_of(request, offer_id)
        earlier = session.scalar(select(Payment).where(Payment.idempotency_key == key))
        if earlier is not None:
            return _replay(earlier)
        if offer.status != OfferStatus.SENT:
            raise Conflict(
                f"This offer is {offer.status} and can no longer be accepted.",
                "Nothing was charged. Reload the page to see the current offers.",
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
            provider=provider.name,
            test=provider.is_test,
            amount=offer.price,
            currency=offer.currency,
            card_last4=card[-4:],
            status="pending",
        )
        session.add(payment)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict("A payment for this request is already under way.", "Nothing more was charged.") from None
        payment_id, amount, currency, request_id = payment.id, offer.price, offer.currency, request.id
    try:
        outcome = provider.authorise(amount, currency, card, key)
    except Exception as exc:  # the provider failing must leave the offers open, not a stuck request
        from workflow.payments import PaymentOutcome

        outcome = PaymentOutcome(False, "failed", message=f"The payment service did not answer ({type(exc).__name__}).")
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        request = session.get(CustomerRequest, request_id)
        payment.updated_at = now()
        payment.message = outcome.message
        if not outcome.ok:
            payment.status, payment.live_request_id = outcome.status, None
            audit.record(session, "customer", "payment.declined", request_id, payment_id=payment_id)
            move_request(session, request, RequestStatus.OFFERS_SENT, "system", values={"accepted_offer_id": None})
            session.commit()
            raise PaymentFailed(outcome.message or "The card was declined.", "Nothing was charged. Try another card.")
        payment.status, payment.provider_ref = "authorised", outcome.reference
        audit.record(
            session,
            "customer",
            "payment.authorised",
            request_id,
            payment_id=payment_id,
            amount=str(amount),
            test=provider.is_test,
        )
        for other in request.offers:
            if other.id == offer_id:
                move_offer(session, other, OfferStatus.ACCEPTED, "customer")
                pairs.record_accepted(session, request, other)
            elif other.status == OfferStatus.SENT:
                move_offer(session, other, OfferStatus.SUPERSEDED, "system")
        move_request(session, request, RequestStatus.PAID, "system", payment_id=payment_id)
        session.commit()
        email = request.email
    if outbox is not None:
        outbox.send(
            email,
            "Payment authorised",
            f"Your card was authorised for {amount} {currency}. We will charge it when the order ships.\n",
        )
    return AcceptResult(payment_id, "authorised", replayed=False)


def _replay(payment: Payment) -> AcceptResult:
    if payment.status == "pending":
        raise Conflict("This payment is still being processed.", "Wait a moment and reload the page.")
    if payment.status == "declined" or payment.status == "failed":
        raise PaymentFailed(payment.message or "The card was declined.", "Nothing was charged. Try another card.")
    return AcceptResult(payment.id, payment.status, replayed=True)


def live_payment(session, request_id: int) -> Payment | None:  # type: ignore[no-untyped-def]
    return session.scalar(select(Payment).where(Payment.live_request_id == request_id))


def fulfil(sessions: sessionmaker, provider: PaymentProvider, request_id: int, user: User, outbox: Outbox) -> None:
    """Capture the authorised payment and mark the request fulfilled."""
    with sessions() as session:
        request = load_by_id(session, request_id)
        if request.status != RequestStatus.PAID:
            raise Conflict(f"Only a paid request can be fulfilled; this one is {request.status}.")
        payment = live_payment(session, request.id)
        if payment is None or payment.status not in ("authorised", "capture_failed"):
            raise Conflict("There is no authorised payment to capture.")
        reference, amount, payment_id = payment.provider_ref, payment.amount, payment.id
    outcome = provider.capture(reference, amount, f"capture:{payment_id}")
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        request = session.get(CustomerRequest, request_id)
        payment.updated_at, payment.message = now(), outcome.message
        if not outcome.ok:
            payment.status = "capture_failed"
            audit.record(session, actor(user), "payment.capture_failed", request_id, payment_id=payment_id)
            session.commit()
            raise PaymentFailed(
                f"The capture was refused: {outcome.message}",
                "The order was not marked fulfilled. Contact the customer about another way to pay.",
            )
        payment.status = "captured"
        audit.record(session, actor(user), "payment.captured", request_id, payment_id=payment_id, amount=str(amount))
        move_request(session, request, RequestStatus.FULFILLED, actor(user))
        session.commit()
        email = request.email
    outbox.send(email, "Your order is on its way", f"We charged {amount} and your order is fulfilled. Thank you.\n")


def close(sessions: sessionmaker, request_id: int, user: User) -> None:
    with sessions() as session:
        request = load_by_id(session, request_id)
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
    outcome = provider.refund(reference, amount, f"refund:{payment_id}")
    with sessions() as session:
        payment = session.get(Payment, payment_id)
        payment.updated_at, payment.message = now(), outcome.message
        if not outcome.ok:
            session.commit()
            raise PaymentFailed(f"The refund was refused: {outcome.message}")
        payment.status = "refunded"
        audit.record(session, actor(user), "payment.refunded", request_id, payment_id=payment_id, amount=str(amount))
        session.commit()


def expire_offers(sessions: sessionmaker, token: str | None = None) -> None:
    """Offers past their expiry become expired; a request left with none open expires too."""
    moment = now()
    with sessions() as session:
        query = select(Offer).where(Offer.status == OfferStatus.SENT.value, Offer.expires_at < moment)
        if token is not None:
            query = query.join(CustomerRequest).where(CustomerRequest.token == token)
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
                move_request(session, request, RequestStatus.EXPIRED, "system", reason="offers expired")
        session.commit()


def void_lapsed_authorisations(sessions: sessionmaker, provider: PaymentProvider, ttl_hours: float) -> int:
    """Release authorisations older than `ttl_hours` (card holds lapse) and cancel their requests."""
    cutoff = now() - timedelta(hours=ttl_hours)
    with sessions() as session:
        stale = [
            (p.id, p.provider_ref, p.request_id)
            for p in session.scalars(select(Payment).where(Payment.status == "authorised", Payment.updated_at < cutoff))
        ]
    count = 0
    for payment_id, reference, request_id in stale:
        outcome = provider.void(reference, f"void:{payment_id}")
        with sessions() as session:
            payment = session.get(Payment, payment_id)
            payment.updated_at, payment.message = now(), outcome.message
            payment.status, payment.live_request_id = "voided", None
            audit.record(session, "system", "payment.voided", request_id, payment_id=payment_id, ok=outcome.ok)
            request = session.get(CustomerRequest, request_id)
            if request.status == RequestStatus.PAID:
                move_request(session, request, RequestStatus.CANCELLED, "system", reason="authorisation lapsed")
            session.commit()
            count += 1
    return count


def cancel_by_operator(
    sessions: sessionmaker, provider: PaymentProvider, request_id: int, user: User, reason: str, outbox: Outbox
) -> None:
    """Cancel a request for the customer; a held payment (authorised, not captured) is voided first."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("Please give the reason for cancelling (the customer sees it).")
    with sessions() as session:
        request = load_by_id(session, request_id)
        if request.status in (RequestStatus.ACCEPTED, RequestStatus.FULFILLED):
            raise Conflict(
                f"A request that is {request.status} cannot be cancelled.",
                "Wait for a payment in progress; refund a fulfilled one instead.",
            )
        payment = live_payment(session, request.id)
        held = (payment.id, payment.provider_ref) if payment is not None and payment.status == "authorised" else None
    if held is not None:
        outcome = provider.void(held[1], f"void:{held[0]}")
        if not outcome.ok:
            raise PaymentFailed(f"The card hold could not be released: {outcome.message}", "Try again in a minute.")
    with sessions() as session:
        request = session.get(CustomerRequest, request_id)
        if held is not None:
            payment = session.get(Payment, held[0])
            payment.status, payment.live_request_id, payment.updated_at = "voided", None, now()
            audit.record(session, actor(user), "payment.voided", request_id, payment_id=held[0])
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
    outbox.send(email, "Your Vitrine request was cancelled", f"{user.name} cancelled your request: {reason}\n")

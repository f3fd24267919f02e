"""Customer requests: intake checks, creation with the instant matches, look-up by token, the
customer's own actions (message, ask for something else, cancel) and the expected reply time."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from catalog.money import PriceError, parse_price
from catalog.product_search import ProductHit
from mail.outbox import Outbox, notify_staff
from workflow import audit, mail_budget, rates, request_tokens
from workflow.errors import Conflict, Invalid, NotFound
from workflow.lifecycle import move_offer, move_request
from workflow.models import AuditEntry, Candidate, CustomerRequest, Message, now, utc
from workflow.states import OfferStatus, RequestStatus
from workflow.uploads import StoredPhoto

MAX_WORDS = 500
MAX_MESSAGE = 2000
DEFAULT_HANDLING_S = 10 * 60
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,255}\.[A-Za-z]{2,}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


@dataclass(frozen=True)
class Wishes:
    email: str
    words: str
    budget: Decimal | None
    budget_currency: str | None = None


def check_wishes(
    email: str | None, words: str | None, budget: str | None, currency: str | None = None, default_currency: str = "EUR"
) -> Wishes:
    """The customer's form fields, cleaned; raises `Invalid` naming the field to fix. A budget is
    money in `currency` (the form's choice; `default_currency` when none was given)."""
    email = (email or "").strip()
    if not _EMAIL.match(email):
        raise Invalid("Please give an e-mail address we can send your link to (like name@example.com).")
    words = (words or "").strip()
    if len(words) > MAX_WORDS:
        raise Invalid(f"Please describe it in at most {MAX_WORDS} characters (you wrote {len(words)}).")
    amount, code = None, None
    if budget and budget.strip():
        code = rates.check_currency(currency) if currency and currency.strip() else default_currency
        try:
            amount = parse_price(budget, currency=code, positive=True)
        except PriceError as exc:
            raise Invalid(f"The budget must be a positive number, like 40 or 39.90 ({exc}).") from None
    return Wishes(email, words, amount, code)


@dataclass(frozen=True)
class CreatedRequest:
    """A new request: its number and its token, which exists here and in the customer's e-mail only."""

    id: int
    token: str


def create_request(
    sessions: sessionmaker,
    wishes: Wishes,
    photo: StoredPhoto,
    hits: list[ProductHit],
    outbox: Outbox,
    link: str,
    secret: str = "",
    mails_per_hour: int = 0,
) -> CreatedRequest:
    """Store the request with its ranked instant matches and queue it for an operator.

    `link` is the request page address with `{token}` in place of the token; `secret` (the app's)
    lets later e-mails derive the link again (`workflow.request_tokens`)."""
    issued = request_tokens.issue(secret)
    with sessions() as session:
        request = CustomerRequest(
            token_sha256=issued.sha256,
            token_salt=issued.salt,
            status=RequestStatus.SUBMITTED.value,
            email=wishes.email,
            words=wishes.words,
            budget=wishes.budget,
            budget_currency=wishes.budget_currency,
            photo_sha256=photo.sha256,
            photo_width=photo.width,
            photo_height=photo.height,
            category=hits[0].category if hits else "",
        )
        session.add(request)
        session.flush()
        audit.record(session, "customer", "request.submitted", request.id, words=wishes.words[:100])
        for rank, hit in enumerate(hits):
            session.add(
                Candidate(
                    request_id=request.id,
                    round=0,
                    rank=rank,
                    product_id=hit.product_id,
                    image_id=hit.image_id,
                    score=float(hit.score),
                    query={"kind": "instant"},
                )
            )
        move_request(session, request, RequestStatus.MATCHED, "system", candidates=len(hits))
        move_request(session, request, RequestStatus.QUEUED, "system", values={"queued_at": now()})
        mail = mail_budget.may_mail(session, wishes.email, mails_per_hour, request.id)
        if not mail:  # kept, but this address had its hour's share of mail (workflow.mail_budget)
            audit.record(session, "system", "mail.suppressed", request.id, reason="mails_per_address_hour")
        else:  # in the same transaction: the mail exists exactly when the request does
            outbox.send_template(
                wishes.email, "request_received", {"link": link.format(token=issued.token)}, session=session
            )
        session.commit()
        created = CreatedRequest(request.id, issued.token)
    return created


def link_for(request: CustomerRequest, link: str, secret: str) -> str:
    """The request page's address for a later e-mail, or a pointer to the first e-mail when the token
    cannot be derived again (a request from before hashed tokens, or a changed secret)."""
    token = request_tokens.token_of(request.token_sha256, request.token_salt, secret)
    if token is None:
        return "Open your request with the link in our first e-mail about it."
    return link.format(token=token)


def load_by_token(session: Session, token: str) -> CustomerRequest:
    """The request for a token; NotFound for any token that is malformed or unknown (the same answer)."""
    request = None
    if _TOKEN.match(token or ""):
        request = session.scalar(
            select(CustomerRequest)
            .where(CustomerRequest.token_sha256 == request_tokens.token_hash(token))
            .options(selectinload(CustomerRequest.offers), selectinload(CustomerRequest.messages))
        )
    if request is None:
        raise NotFound(
            "There is no request at this address.",
            "Check that you copied the whole link from your e-mail, or start a new request.",
        )
    return request


def load_by_id(session: Session, request_id: int) -> CustomerRequest:
    request = session.get(CustomerRequest, request_id)
    if request is None:
        raise NotFound("There is no request with this number.", "Go back to the queue.")
    return request


def add_message(
    sessions: sessionmaker, token: str, body: str, something_else: bool = False, outbox: Outbox | None = None
) -> None:
    """A message from the customer; with `something_else`, the open offers are declined and the
    request goes back to the operators. The staff's mailbox is told (`mail.outbox.notify_staff`)."""
    body = (body or "").strip()
    if not body:
        raise Invalid("Please write a message first.")
    if len(body) > MAX_MESSAGE:
        raise Invalid(f"Please keep the message under {MAX_MESSAGE} characters.")
    with sessions() as session:
        request = load_by_token(session, token)
        if request.status in (RequestStatus.CLOSED, RequestStatus.CANCELLED, RequestStatus.EXPIRED):
            raise Invalid("This request is finished; please start a new one.")
        session.add(Message(request_id=request.id, author="customer", body=body))
        audit.record(session, "customer", "message.customer", request.id, something_else=something_else)
        if something_else and request.status == RequestStatus.OFFERS_SENT:
            for offer in request.offers:
                if offer.status == OfferStatus.SENT:
                    move_offer(session, offer, OfferStatus.DECLINED, "customer", reason="asked for something else")
            move_request(session, request, RequestStatus.QUEUED, "customer", values={"queued_at": now()})
        notice = {"request_id": request.id, "body": body, "something_else": something_else}
        notify_staff(outbox, "staff_customer_message", notice, session=session)
        session.commit()


def cancel(sessions: sessionmaker, token: str) -> None:
    with sessions() as session:
        request = load_by_token(session, token)
        if request.status in (RequestStatus.ACCEPTED, RequestStatus.PAID, RequestStatus.FULFILLED):
            raise Conflict(
                "This request is already paid for, so it cannot be cancelled here.",
                "Write a message to your operator: they can cancel it and release the payment.",
            )
        for offer in request.offers:
            if offer.status == OfferStatus.SENT:
                move_offer(session, offer, OfferStatus.WITHDRAWN, "customer", reason="request cancelled")
        move_request(session, request, RequestStatus.CANCELLED, "customer", values={"claimed_by_id": None})
        session.commit()


@dataclass(frozen=True)
class Estimate:
    """An honest expected reply time and what it rests on."""

    minutes_low: int
    minutes_high: int
    ahead: int
    handling_minutes: float
    operators: int
    from_history: bool

    def to_json(self) -> dict:
        return {
            "minutes_low": self.minutes_low,
            "minutes_high": self.minutes_high,
            "requests_ahead": self.ahead,
            "typical_handling_minutes": round(self.handling_minutes, 1),
            "operators_recently_active": self.operators,
            "based_on_history": self.from_history,
        }


def estimate_reply(session: Session, request: CustomerRequest) -> Estimate | None:
    """From the queue ahead of this request and recent handling times (claim → offers sent).
    None once offers are out."""
    if request.status not in (RequestStatus.QUEUED, RequestStatus.CLAIMED, RequestStatus.MATCHED):
        return None
    moment = now()
    ahead = session.scalar(
        select(func.count())
        .select_from(CustomerRequest)
        .where(
            CustomerRequest.status.in_([RequestStatus.QUEUED.value, RequestStatus.CLAIMED.value]),
            CustomerRequest.queued_at < (request.queued_at or request.created_at),
        )
    )
    recent = session.execute(
        select(AuditEntry.detail, AuditEntry.actor)
        .where(AuditEntry.action == "request.offers_sent")
        .order_by(AuditEntry.id.desc())
        .limit(30)
    ).all()
    durations = [float(d["handling_s"]) for d, _ in recent if d and "handling_s" in d]
    handling = statistics.median(durations) if durations else DEFAULT_HANDLING_S
    operators = session.scalar(
        select(func.count(func.distinct(AuditEntry.actor))).where(
            AuditEntry.actor.like("operator:%"), AuditEntry.at > moment - timedelta(hours=1)
        )
    )
    operators = max(1, operators or 0)
    waiting = (ahead or 0) * handling / operators
    if request.status == RequestStatus.CLAIMED and request.claimed_at is not None:
        spent = (moment - utc(request.claimed_at)).total_seconds()
        waiting = max(60.0, handling - spent)
    else:
        waiting += handling
    low = max(1, int(waiting * 0.6 // 60))
    high = max(low + 1, int(waiting * 1.6 // 60) + 1)
    return Estimate(low, high, ahead or 0, handling / 60, operators, bool(durations))


def expire_stale(sessions: sessionmaker, max_wait_hours: float) -> int:
    """Requests nobody took up within `max_wait_hours` of queueing expire (the customer sees it)."""
    cutoff = now() - timedelta(hours=max_wait_hours)
    count = 0
    with sessions() as session:
        stale = session.scalars(
            select(CustomerRequest).where(
                CustomerRequest.status == RequestStatus.QUEUED.value, CustomerRequest.queued_at < cutoff
            )
        ).all()
        for request in stale:
            move_request(session, request, RequestStatus.EXPIRED, "system", reason="nobody took it up in time")
            session.add(
                Message(
                    request_id=request.id,
                    author="system",
                    body="We are sorry: no operator could take up this request in time. Please try again.",
                )
            )
            count += 1
        session.commit()
    return count

"""The lists an operator lives in, each with a count: the unclaimed queue, my requests, offers out,
paid orders to fulfil, offers a vendor flagged "not available", customers waiting for a reply, and
recently closed requests.

A request leaves the queue once offers are out; without these lists it was reachable only by typing
its address. "Waiting for a reply" needs no read-tracking table: a live request whose latest message
is the customer's has not been answered yet, and an operator's reply takes it off the list.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.sql import ColumnElement

from workflow.claims import open_queue
from workflow.models import CustomerRequest, Message, Offer, User, now, utc
from workflow.states import RequestStatus

R = RequestStatus
VIEWS: dict[str, str] = {
    "queue": "Queue",
    "mine": "Mine",
    "offers_out": "Offers out",
    "to_fulfil": "To fulfil",
    "unavailable": "Not available",  # a vendor flagged an open offer: offer something else (issue 15)
    "messages": "Waiting for a reply",
    "closed": "Closed",
}
LIVE = (R.QUEUED, R.CLAIMED, R.OFFERS_SENT, R.ACCEPTED, R.PAID)
ENDED = (R.FULFILLED, R.CLOSED, R.CANCELLED, R.EXPIRED)
CLOSED_WINDOW = timedelta(days=30)  # the closed list shows the last month; older ones are in the audit trail
MAX_ROWS = 200


class UnknownView(ValueError):
    """A view name that is not one of VIEWS."""


@dataclass(frozen=True)
class ViewRow:
    id: int
    status: str
    waiting_s: float  # since the request was last updated
    words: str
    photo_sha256: str
    operator: str | None  # who holds the claim or sent the offers
    last_message: str  # the customer's unanswered words, in the messages view


def _values(statuses: Collection[RequestStatus]) -> list[str]:
    return [s.value for s in statuses]


def _latest_message_author():  # type: ignore[no-untyped-def]
    """Per request, the author of its newest message (a correlated scalar subquery)."""
    return (
        select(Message.author)
        .where(Message.request_id == CustomerRequest.id)
        .order_by(Message.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _has_unavailable_offer() -> ColumnElement[bool]:
    """Whether the request has an open offer its vendor flagged not available (`workflow.offer_flags`)."""
    from workflow.offer_flags import OfferUnavailable

    return (
        select(Offer.id)
        .join(OfferUnavailable, OfferUnavailable.offer_id == Offer.id)
        .where(Offer.request_id == CustomerRequest.id, Offer.status == "sent")
        .exists()
    )


def _filter(view: str, user: User, moment: datetime) -> ColumnElement[bool]:
    status = CustomerRequest.status
    if view == "mine":
        return and_(
            status.in_(_values(LIVE)),
            or_(
                and_(status == R.CLAIMED.value, CustomerRequest.claimed_by_id == user.id),
                and_(status != R.CLAIMED.value, CustomerRequest.operator_id == user.id),
            ),
        )
    if view == "offers_out":
        return status.in_(_values((R.OFFERS_SENT, R.ACCEPTED)))
    if view == "to_fulfil":
        return status == R.PAID.value
    if view == "unavailable":
        return and_(status == R.OFFERS_SENT.value, _has_unavailable_offer())
    if view == "messages":
        return and_(status.in_(_values(LIVE)), _latest_message_author() == "customer")
    if view == "closed":
        return and_(status.in_(_values(ENDED)), CustomerRequest.updated_at >= moment - CLOSED_WINDOW)
    raise UnknownView(view)


def counts(sessions: sessionmaker, user: User) -> dict[str, int]:
    """How many requests each view holds now (the queue counts open requests, claimed or not)."""
    moment = now()
    with sessions() as session:
        found = {
            view: session.scalar(select(func.count(CustomerRequest.id)).where(_filter(view, user, moment))) or 0
            for view in VIEWS
            if view != "queue"
        }
        found["queue"] = (
            session.scalar(
                select(func.count(CustomerRequest.id)).where(CustomerRequest.status.in_(_values((R.QUEUED, R.CLAIMED))))
            )
            or 0
        )
    return {view: found[view] for view in VIEWS}


def rows(sessions: sessionmaker, user: User, view: str, prefer: Collection[str] = ()) -> list:
    """The requests of `view`: the queue as `claims.open_queue` orders it, the others newest change first."""
    if view == "queue":
        return open_queue(sessions, prefer)
    moment = now()
    with sessions() as session:
        found = session.execute(
            select(CustomerRequest, User.name)
            .outerjoin(User, User.id == func.coalesce(CustomerRequest.claimed_by_id, CustomerRequest.operator_id))
            .where(_filter(view, user, moment))
            .order_by(CustomerRequest.updated_at.desc(), CustomerRequest.id.desc())
            .limit(MAX_ROWS)
        ).all()
        latest = {}
        if view == "messages" and found:
            ids = [request.id for request, _ in found]
            for message in session.scalars(select(Message).where(Message.request_id.in_(ids)).order_by(Message.id)):
                latest[message.request_id] = message.body
    return [
        ViewRow(
            request.id,
            request.status,
            (moment - utc(request.updated_at or request.created_at)).total_seconds(),
            request.words,
            request.photo_sha256,
            holder,
            latest.get(request.id, "")[:200],
        )
        for request, holder in found
    ]

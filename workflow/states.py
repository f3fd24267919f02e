"""The life cycles of a customer request and of an offer, as explicit transition tables.

Every status change in the services goes through `check_request` / `check_offer`, so a move the
tables do not list (paying a cancelled request, accepting a withdrawn offer) is refused in one place.
"""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    MATCHED = "matched"
    QUEUED = "queued"
    CLAIMED = "claimed"
    OFFERS_SENT = "offers_sent"
    ACCEPTED = "accepted"
    PAID = "paid"  # the payment is authorised
    FULFILLED = "fulfilled"  # the payment is captured
    CLOSED = "closed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OfferStatus(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    SUPERSEDED = "superseded"


R = RequestStatus
REQUEST_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    R.SUBMITTED: frozenset({R.MATCHED, R.CANCELLED}),
    R.MATCHED: frozenset({R.QUEUED, R.CANCELLED}),
    R.QUEUED: frozenset({R.CLAIMED, R.CANCELLED, R.EXPIRED}),
    # Released or abandoned work goes back to the queue.
    R.CLAIMED: frozenset({R.QUEUED, R.OFFERS_SENT, R.CANCELLED}),
    # The customer asks for something else (back to the queue) or accepts one offer.
    R.OFFERS_SENT: frozenset({R.ACCEPTED, R.QUEUED, R.CANCELLED, R.EXPIRED}),
    # Accepted while the payment is being authorised; a declined card returns to the offers.
    R.ACCEPTED: frozenset({R.PAID, R.OFFERS_SENT}),
    # An authorisation that lapses is voided and the request cancelled.
    R.PAID: frozenset({R.FULFILLED, R.CANCELLED}),
    R.FULFILLED: frozenset({R.CLOSED}),
    R.CLOSED: frozenset(),
    R.CANCELLED: frozenset(),
    R.EXPIRED: frozenset(),
}

OS = OfferStatus
OFFER_TRANSITIONS: dict[OfferStatus, frozenset[OfferStatus]] = {
    OS.SENT: frozenset({OS.ACCEPTED, OS.DECLINED, OS.EXPIRED, OS.WITHDRAWN, OS.SUPERSEDED}),
    OS.ACCEPTED: frozenset(),
    OS.DECLINED: frozenset(),
    OS.EXPIRED: frozenset(),
    OS.WITHDRAWN: frozenset(),
    OS.SUPERSEDED: frozenset(),
}

LABELS: dict[str, str] = {
    "submitted": "Received",
    "matched": "Matched",
    "queued": "Waiting for an operator",
    "claimed": "An operator is working on it",
    "offers_sent": "Offers ready",
    "accepted": "Offer accepted, payment in progress",
    "paid": "Paid (card authorised)",
    "fulfilled": "Fulfilled (payment captured)",
    "closed": "Closed",
    "cancelled": "Cancelled",
    "expired": "Expired",
}


class TransitionRefused(Exception):
    """A status change the tables do not allow; the message says what was tried and from where."""


def check_request(current: str, new: RequestStatus) -> None:
    allowed = REQUEST_TRANSITIONS[RequestStatus(current)]
    if new not in allowed:
        raise TransitionRefused(
            f"This request is {LABELS[current].lower()} and cannot become {LABELS[new.value].lower()}."
        )


def check_offer(current: str, new: OfferStatus) -> None:
    if new not in OFFER_TRANSITIONS[OfferStatus(current)]:
        raise TransitionRefused(f"This offer is {current} and cannot become {new.value}.")

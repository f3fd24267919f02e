"""A vendor's "not available" on an offered product.

The operator offers what the catalog says is there; the vendor knows better (the last one sold in a
shop this morning). A flag is kept beside the offer (`offer_unavailable`) instead of changing the
offer's status, so the operator still sees the offer they made, with a clear mark, and decides what
to offer instead. The customer can no longer accept it: `offers_service.accept_offer` checks the flag
in the transaction of the payment's intent, before any money moves.

Flagging and accepting cannot cross: both first write the offer's row (a no-op compare-and-set that
takes its row lock), so the second waits for the first to commit. The flag is then written only while
the request still shows its offers (a compare-and-set on the request), and the accept reads the flag
after its own offer write, before it moves the request to `accepted`: whichever commits first wins,
the other is refused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from catalog.db import Base
from workflow.errors import Conflict, NotFound
from workflow.models import CustomerRequest, Offer, User, now
from workflow.states import OfferStatus, RequestStatus


class OfferUnavailable(Base):
    """An offer whose product its vendor said is not available (one flag per offer, never undone)."""

    __tablename__ = "offer_unavailable"

    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True)
    vendor_id: Mapped[int] = mapped_column(Integer, index=True)
    flagged_by: Mapped[str] = mapped_column(String(120))
    flagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


def flags_of(session: Session, offer_ids: list[int]) -> dict[int, OfferUnavailable]:
    """The flags of these offers, by offer id (one query)."""
    if not offer_ids:
        return {}
    found = session.scalars(select(OfferUnavailable).where(OfferUnavailable.offer_id.in_(offer_ids)))
    return {flag.offer_id: flag for flag in found}


def is_flagged(session: Session, offer_id: int) -> bool:
    return session.get(OfferUnavailable, offer_id) is not None


def flag_unavailable(db: sessionmaker, vendor_id: int, offer_id: int, user: User) -> bool:
    """Mark the vendor's offer `offer_id` not available; audited as `offer.unavailable`. Another
    vendor's offer is NotFound (it does not exist for this vendor); an offer no longer open (accepted,
    paid, withdrawn...) or one the customer is paying for right now is a Conflict. False when it was
    flagged already (a second click changes nothing)."""
    from workflow import audit  # not at the top: workflow.models imports this module for its table
    from workflow.claims import actor

    with db() as session:
        offer = session.get(Offer, offer_id)
        if offer is None or offer.vendor_id != vendor_id:
            raise NotFound("You have no offer with this number.", "Open your outbox to see your offers.")
        if is_flagged(session, offer_id):
            return False
        if offer.status != OfferStatus.SENT:
            raise Conflict(
                f"This offer is {offer.status}, so it can no longer be marked not available.",
                "Only an offer the customer has not answered yet can be.",
            )
        # The offer row first, as the accept does (`offers_service.accept_offer`): whichever of the two
        # comes second waits for the other's commit and then sees it (PostgreSQL row locks; SQLite
        # has one writer anyway). Locking only the request let an accept read "not flagged" meanwhile.
        offer_open = session.execute(
            update(Offer)
            .where(Offer.id == offer_id, Offer.status == OfferStatus.SENT.value)
            .values(status=OfferStatus.SENT.value)
            .execution_options(synchronize_session=False)
        )
        still_open = offer_open.rowcount == 1 and session.execute(
            update(CustomerRequest)
            .where(CustomerRequest.id == offer.request_id, CustomerRequest.status == RequestStatus.OFFERS_SENT.value)
            .values(updated_at=now())
            .execution_options(synchronize_session=False)
        )
        if not still_open or still_open.rowcount != 1:
            session.rollback()
            raise Conflict(
                "The customer is paying for an offer on this request right now, or it changed meanwhile.",
                "Reload your outbox in a moment: if the customer paid, ship the order or contact the operator.",
            )
        if is_flagged(session, offer_id):  # a second click that waited on the first's row lock
            session.rollback()
            return False
        who = actor(user)
        session.add(OfferUnavailable(offer_id=offer_id, vendor_id=vendor_id, flagged_by=who, flagged_at=now()))
        audit.record(
            session, who, "offer.unavailable", offer.request_id, offer_id=offer_id, product_id=offer.product_id
        )
        session.commit()
        return True

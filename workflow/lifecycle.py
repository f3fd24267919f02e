"""Status changes as compare-and-set updates: the row changes only if it still has the status the
caller saw, so two people acting at once cannot both win. The transition tables are checked first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from workflow import audit
from workflow.errors import Conflict
from workflow.models import CustomerRequest, Offer, now
from workflow.states import LABELS, OfferStatus, RequestStatus, TransitionRefused, check_offer, check_request


def move_request(
    session: Session,
    request: CustomerRequest,
    new: RequestStatus,
    actor: str,
    values: dict | None = None,
    **detail: Any,
) -> None:
    """Move `request` to `new` (plus column `values`) if nobody changed its status meanwhile."""
    old = request.status
    try:
        check_request(old, new)
    except TransitionRefused as exc:
        raise Conflict(str(exc), "Reload the page to see the current state.") from None
    changes = {"status": new.value, "updated_at": now(), **(values or {})}
    result = session.execute(
        update(CustomerRequest)
        .where(CustomerRequest.id == request.id, CustomerRequest.status == old)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise Conflict("This request changed while you were acting on it.", "Reload the page to see the current state.")
    for key, value in changes.items():
        set_committed(request, key, value)
    audit.record(session, actor, f"request.{new.value}", request.id, previous=old, **detail)


def move_offer(session: Session, offer: Offer, new: OfferStatus, actor: str, **detail: Any) -> bool:
    """Move `offer` to `new`; False (and no change) if it is no longer in the status the caller saw."""
    old = offer.status
    try:
        check_offer(old, new)
    except TransitionRefused as exc:
        raise Conflict(str(exc), "Reload the page to see the current offers.") from None
    result = session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.status == old)
        .values(status=new.value)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    set_committed(offer, "status", new.value)
    audit.record(session, actor, f"offer.{new.value}", offer.request_id, offer_id=offer.id, previous=old, **detail)
    return True


def set_committed(obj: object, key: str, value: Any) -> None:
    """Reflect a value written by an UPDATE statement on the loaded object without marking it dirty."""
    from sqlalchemy.orm.attributes import set_committed_value

    set_committed_value(obj, key, value)


def label(status: str) -> str:
    return LABELS.get(status, status)

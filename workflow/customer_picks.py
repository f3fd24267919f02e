"""The customer's own pick: "this is the one" on an instant match.

The customer often recognises the product among the instant matches before any operator looks.
The pick goes to the operators as the customer's words (a message, so the request shows under
"Waiting for a reply") and as an audit entry the workbench reads to mark that candidate; the
operator still confirms price and stock and sends it as an offer, as with any other candidate.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from catalog.db import Product, Vendor
from workflow import audit
from workflow.errors import Conflict, Invalid
from workflow.models import AuditEntry, Candidate, Message
from workflow.requests_service import load_by_token
from workflow.states import RequestStatus

PICKABLE = (RequestStatus.QUEUED, RequestStatus.CLAIMED, RequestStatus.OFFERS_SENT)
ACTION = "customer.picked"


def pick_instant_match(sessions: sessionmaker, token: str, product_id: int) -> str:
    """Record that the customer chose `product_id` from their instant matches; its title. Picking the
    same product again adds nothing."""
    with sessions() as session:
        request = load_by_token(session, token)
        if request.status not in PICKABLE:
            raise Conflict("This request can no longer take a pick.", "Start a new request if you are still looking.")
        shown = session.scalar(
            select(Candidate.id).where(
                Candidate.request_id == request.id, Candidate.round == 0, Candidate.product_id == product_id
            )
        )
        row = session.execute(select(Product, Vendor.name).join(Vendor).where(Product.id == product_id)).one_or_none()
        if shown is None or row is None:
            raise Invalid("That product is not one of your matches any more; pick another one.")
        product, vendor = row
        last = session.scalar(
            select(AuditEntry)
            .where(AuditEntry.request_id == request.id, AuditEntry.action == ACTION)
            .order_by(AuditEntry.id.desc())
        )
        if last is not None and (last.detail or {}).get("product_id") == product_id:
            return product.title
        session.add(
            Message(
                request_id=request.id,
                author="customer",
                body=f"This is the one: {product.title} from {vendor} ({product.price} {product.currency}). "
                "Please confirm the price and stock and send me an offer.",
            )
        )
        audit.record(session, "customer", ACTION, request.id, product_id=product_id, title=product.title)
        session.commit()
        return product.title


def latest_pick(audit_entries: list[dict]) -> dict | None:
    """The customer's latest pick among a request's audit entries (as `workflow.views` lists them)."""
    picks = [entry["detail"] for entry in audit_entries if entry["action"] == ACTION]
    return picks[-1] if picks else None

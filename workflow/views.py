"""Plain dictionaries describing a request for the pages and the JSON API (one source for both)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product, ProductImage, Vendor
from catalog.ids import is_customer_view
from workflow import offer_flags, orders, rates, vendor_products
from workflow.audit import trail
from workflow.customer_picks import latest_pick
from workflow.lifecycle import label
from workflow.models import Candidate, CustomerRequest, CustomerView, Payment, User, now, utc
from workflow.requests_service import estimate_reply
from workflow.states import OfferStatus


def image_url(sha256: str) -> str:
    return f"/images/{sha256}.jpg" if sha256 else ""


def _iso(moment) -> str | None:  # type: ignore[no-untyped-def]
    value = utc(moment)
    return value.isoformat(timespec="seconds") if value else None


def candidates(
    session: Session, request: CustomerRequest, round_: int | None = None, staff: bool = False
) -> list[dict]:
    """The ranked candidates of one search round (default: the latest), with live product facts.

    A candidate found through a customer view shows its product's first catalog photo; for `staff`
    (the workbench, never the customer) it also carries `customer_view`: the view it matched (its id,
    its photo, whether it is still live), so an operator can see why and remove a wrong one."""
    if round_ is None:
        round_ = session.scalar(select(func.max(Candidate.round)).where(Candidate.request_id == request.id)) or 0
    rows = session.execute(
        select(Candidate, Product, Vendor.name, ProductImage.sha256)
        .join(Product, Product.id == Candidate.product_id)
        .join(Vendor, Vendor.id == Product.vendor_id)
        .outerjoin(ProductImage, ProductImage.id == Candidate.image_id)
        .where(Candidate.request_id == request.id, Candidate.round == round_)
        .where(Product.active)  # deactivated by its vendor since the search ran (catalog_ingest.product_edits)
        .order_by(Candidate.rank)
    ).all()
    through_views = [c for c, *_ in rows if is_customer_view(c.image_id)]
    first_photos: dict[int, str] = {}
    views: dict[int, CustomerView] = {}
    if through_views:
        for product_id, sha in session.execute(
            select(ProductImage.product_id, ProductImage.sha256)
            .where(ProductImage.product_id.in_([c.product_id for c in through_views]))
            .order_by(ProductImage.position.desc())
        ):
            first_photos[product_id] = sha  # the lowest position wins
        if staff:
            views = {
                v.image_id: v
                for v in session.scalars(
                    select(CustomerView).where(CustomerView.image_id.in_([c.image_id for c in through_views]))
                )
            }
    table = rates.load_table(session) if request.budget is not None else None
    found = []
    for c, p, vendor, sha in rows:
        item = {
            "product_id": c.product_id,
            "rank": c.rank + 1,
            "score": round(c.score, 4),
            "title": p.title,
            "vendor": vendor,
            "price": str(p.price),
            "currency": p.currency,
            "category": p.category,
            "in_stock": p.in_stock,
            "url": p.url,
            "image_url": image_url(sha or first_photos.get(c.product_id, "")),
            **_budget(table, request, p.price, p.currency),
        }
        if staff:
            item["customer_view"] = _view_dict(views.get(c.image_id)) if is_customer_view(c.image_id) else None
        found.append(item)
    return found


def _budget(table: rates.RateTable | None, request: CustomerRequest, price, currency: str) -> dict:  # type: ignore[no-untyped-def]
    """The price against the request's budget (`rates.budget_check`): within, over, or no rate."""
    if table is None:
        return {"budget_state": None, "converted": None}
    return rates.budget_check(table, price, currency, request.budget, request.budget_currency)


def _view_dict(view: CustomerView | None) -> dict:
    """The customer view holding the matched vector id now (another one if the slot was reused since)."""
    if view is None:
        return {"id": None, "photo_url": "", "live": False}
    return {"id": view.id, "photo_url": image_url(view.photo_sha256), "live": view.removed_at is None}


def offer_dict(offer) -> dict:  # type: ignore[no-untyped-def]
    return {
        "id": offer.id,
        "product_id": offer.product_id,
        "title": offer.title,
        "vendor": offer.vendor,
        "price": str(offer.price),
        "currency": offer.currency,
        "note": offer.note,
        # An offer past its expiry reads as expired at once; the sweeper (workflow.sweeper) records it.
        "status": OfferStatus.EXPIRED.value
        if offer.status == OfferStatus.SENT and utc(offer.expires_at) <= now()
        else offer.status,
        "expires_at": _iso(offer.expires_at),
        "image_url": image_url(offer.image_sha256),
    }


def customer_view(session: Session, request: CustomerRequest, token: str | None = None) -> dict:
    """Everything the customer may see of their request. `token` is the one the customer came with
    (never stored): their photo is served under it; staff (no token) see it by its staff-only address."""
    estimate = estimate_reply(session, request)
    operator = session.get(User, request.operator_id) if request.operator_id else None
    payment = session.scalar(
        select(Payment).where(Payment.request_id == request.id).order_by(Payment.id.desc()).limit(1)
    )
    table = rates.load_table(session) if request.budget is not None else None
    flagged = offer_flags.flags_of(session, [o.id for o in request.offers])  # the vendor's "not available"
    return {
        "token": token,
        "status": request.status,
        "status_label": label(request.status),
        "created_at": _iso(request.created_at),
        "words": request.words,
        "budget": str(request.budget) if request.budget is not None else None,
        "budget_currency": request.budget_currency,
        "order": orders.order_dict(orders.order_of(session, request.id)),
        "photo_url": f"/r/{token}/photo" if token else image_url(request.photo_sha256),
        "estimate": estimate.to_json() if estimate else None,
        "operator": operator.name if operator else None,
        "instant_matches": candidates(session, request, 0),
        "offers": [
            {**offer_dict(o), **_budget(table, request, o.price, o.currency), "unavailable": o.id in flagged}
            for o in request.offers
        ],
        "messages": [
            {"author": m.author, "name": m.author_name, "body": m.body, "at": _iso(m.created_at)}
            for m in request.messages
        ],
        "payment": (
            {
                "status": payment.status,
                "amount": str(payment.amount),
                "currency": payment.currency,
                "card_last4": payment.card_last4,
                "test": payment.test,
                "message": payment.message,
            }
            if payment
            else None
        ),
    }


def operator_view(session: Session, request: CustomerRequest) -> dict:
    """The customer view plus the claim, the latest search round and the audit trail."""
    view = customer_view(session, request)
    holder = session.get(User, request.claimed_by_id) if request.claimed_by_id else None
    latest = session.scalar(select(func.max(Candidate.round)).where(Candidate.request_id == request.id)) or 0
    last_query = session.scalar(
        select(Candidate.query).where(Candidate.request_id == request.id, Candidate.round == latest).limit(1)
    )
    view.update(
        {
            "id": request.id,
            "email": request.email,
            "category": request.category,
            "photo_size": f"{request.photo_width}x{request.photo_height}",
            "claimed_by": holder.name if holder else None,
            "claim_expires_at": _iso(request.claim_expires_at),
            "round": latest,
            "last_query": last_query or {},
            "candidates": candidates(session, request, latest, staff=True),
            "payments": [
                {
                    "id": p.id,
                    "status": p.status,
                    "amount": str(p.amount),
                    "currency": p.currency,
                    "provider": p.provider,
                    "test": p.test,
                    "card_last4": p.card_last4,
                    "message": p.message,
                    "at": _iso(p.created_at),
                }
                for p in session.scalars(select(Payment).where(Payment.request_id == request.id).order_by(Payment.id))
            ],
            "audit": [
                {"at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail or {}}
                for e in trail(session, request.id)
            ],
        }
    )
    view["customer_pick"] = latest_pick(view["audit"])
    return view


def vendor_overview(db: sessionmaker, vendor_id: int) -> dict:
    """The vendor's name and the overview counts (products, offers waiting, orders to ship, stores,
    jobs; `workflow.vendor_products`). The rows behind them have their own pages: products
    (`vendor_products.product_page`), the outbox (`vendor_outbox`) and orders (`vendor_orders`)."""
    with db() as session:
        vendor = session.get(Vendor, vendor_id)
        return {"vendor": vendor.name if vendor else "", "counts": vendor_products.overview_counts(session, vendor_id)}

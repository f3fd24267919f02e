"""Confirmed pairs: a customer photo and a product a person has judged, the search's training signal.

Every sent offer is an operator saying "this photo shows this product" (`offered`); a customer
accepting it says so again, more strongly (`accepted`); "none of these match" on the workbench says
the shown candidates are not it (`rejected`). Imports (`vitrine pairs import`) add pairs made
elsewhere. Each label is a row of its own, unique per (photo, product, label), so recording the
same judgement twice adds nothing, and a pair keeps its history (who offered, when it was accepted).

Recording from an offer happens inside the offer's transaction but in a savepoint: a failure to
record is logged and never stops the offer (`record_sent_offers`, `record_accepted`).

For learning, `positive_pairs` and `negative_pairs` list the pairs with their stored photo (path and
bytes) and crop; a (photo, product) judged both ways counts as a positive only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product, Vendor
from catalog.workspace import Workspace
from vision.crop import Crop
from workflow import audit
from workflow.claims import actor, require_claim
from workflow.errors import Invalid
from workflow.models import Candidate, ConfirmedPair, CustomerRequest, Offer, User, utc
from workflow.requests_service import load_by_id
from workflow.uploads import image_path

log = logging.getLogger("vitrine.pairs")

OFFERED, ACCEPTED, REJECTED = "offered", "accepted", "rejected"
LABELS = (OFFERED, ACCEPTED, REJECTED)
POSITIVE = (OFFERED, ACCEPTED)
FROM_OFFER, FROM_IMPORT = "offer", "import"


def record_pair(
    session: Session,
    *,
    photo_sha256: str,
    product_id: int,
    vendor: str,
    sku: str,
    label: str,
    source: str,
    crop: Sequence[float] | None = None,
    request_id: int | None = None,
    offer_id: int | None = None,
    created_by_id: int | None = None,
) -> ConfirmedPair | None:
    """Add a pair unless (photo, product, label) is already recorded; the new row, or None."""
    if label not in LABELS:
        raise ValueError(f"a pair's label is one of {', '.join(LABELS)}, not {label!r}")
    known = session.scalar(
        select(ConfirmedPair.id).where(
            ConfirmedPair.photo_sha256 == photo_sha256,
            ConfirmedPair.product_id == product_id,
            ConfirmedPair.label == label,
        )
    )
    if known is not None:
        return None
    pair = ConfirmedPair(
        request_id=request_id,
        photo_sha256=photo_sha256,
        crop=[float(v) for v in crop] if crop else None,
        product_id=product_id,
        vendor=vendor,
        sku=sku,
        label=label,
        source=source,
        offer_id=offer_id,
        created_by_id=created_by_id,
    )
    session.add(pair)
    return pair


def round_crop(session: Session, request_id: int, product_id: int) -> list[float] | None:
    """The crop of the latest search round that showed `product_id` for the request (None: uncropped)."""
    query = session.scalar(
        select(Candidate.query)
        .where(Candidate.request_id == request_id, Candidate.product_id == product_id)
        .order_by(Candidate.round.desc())
        .limit(1)
    )
    crop = (query or {}).get("crop")
    return [float(v) for v in crop] if crop else None


def _product_names(session: Session, product_id: int) -> tuple[str, str] | None:
    row = session.execute(
        select(Vendor.name, Product.sku).join(Product, Product.vendor_id == Vendor.id).where(Product.id == product_id)
    ).one_or_none()
    return (row[0], row[1]) if row else None


def record_sent_offers(session: Session, request: CustomerRequest, offers: Iterable[Offer], user: User) -> int:
    """An `offered` pair per sent offer, in the caller's transaction (a savepoint); never raises.

    Called after the offers are flushed, so the savepoint opens inside the transaction they began."""
    try:
        with session.begin_nested():
            added = 0
            for offer in offers:
                names = _product_names(session, offer.product_id)
                if names is None:
                    continue
                pair = record_pair(
                    session,
                    photo_sha256=request.photo_sha256,
                    product_id=offer.product_id,
                    vendor=names[0],
                    sku=names[1],
                    label=OFFERED,
                    source=FROM_OFFER,
                    crop=round_crop(session, request.id, offer.product_id),
                    request_id=request.id,
                    offer_id=offer.id,
                    created_by_id=user.id,
                )
                added += pair is not None
            session.flush()
            return added
    except Exception:  # a pair not recorded must never stop the offer
        log.exception("could not record the offered pairs of request %s", request.id)
        return 0


def record_accepted(session: Session, request: CustomerRequest, offer: Offer) -> bool:
    """The `accepted` pair of an accepted offer, in the caller's transaction (a savepoint); never raises."""
    try:
        with session.begin_nested():
            names = _product_names(session, offer.product_id)
            offered = session.scalar(
                select(ConfirmedPair).where(
                    ConfirmedPair.photo_sha256 == request.photo_sha256,
                    ConfirmedPair.product_id == offer.product_id,
                    ConfirmedPair.label == OFFERED,
                )
            )
            vendor, sku = names if names else ((offered.vendor, offered.sku) if offered else (offer.vendor, ""))
            pair = record_pair(
                session,
                photo_sha256=request.photo_sha256,
                product_id=offer.product_id,
                vendor=vendor,
                sku=sku,
                label=ACCEPTED,
                source=FROM_OFFER,
                crop=offered.crop if offered else round_crop(session, request.id, offer.product_id),
                request_id=request.id,
                offer_id=offer.id,
            )
            session.flush()
            return pair is not None
    except Exception:  # the customer's acceptance stands whatever happens here
        log.exception("could not record the accepted pair of offer %s", offer.id)
        return False


def reject_shown(sessions: sessionmaker, request_id: int, user: User) -> int:
    """The workbench's "none of these match": a `rejected` pair for each candidate of the latest round.

    Returns how many were new. Nothing else changes (the claim, the request and its offers stay)."""
    with sessions() as session:
        request = load_by_id(session, request_id)
        require_claim(session, request, user, "judge its candidates")
        latest = session.scalar(select(func.max(Candidate.round)).where(Candidate.request_id == request.id))
        shown = (
            session.scalars(
                select(Candidate)
                .where(Candidate.request_id == request.id, Candidate.round == latest)
                .order_by(Candidate.rank)
            ).all()
            if latest is not None
            else []
        )
        if not shown:
            raise Invalid("There are no candidates to reject; search first.", "Search again, then judge the results.")
        added = 0
        for candidate in shown:
            names = _product_names(session, candidate.product_id)
            if names is None:
                continue  # gone from the catalog since the search
            crop = (candidate.query or {}).get("crop")
            pair = record_pair(
                session,
                photo_sha256=request.photo_sha256,
                product_id=candidate.product_id,
                vendor=names[0],
                sku=names[1],
                label=REJECTED,
                source=FROM_OFFER,
                crop=crop,
                request_id=request.id,
                created_by_id=user.id,
            )
            added += pair is not None
        audit.record(session, actor(user), "pairs.rejected", request.id, round=latest, shown=len(shown), new=added)
        session.commit()
        return added


@dataclass(frozen=True)
class PairRecord:
    """One confirmed pair with where its photo lies (the stored JPEG), as the learner reads it."""

    id: int
    photo_sha256: str
    photo_path: Path | None  # None when the stored photo is missing
    crop: Crop | None
    product_id: int
    vendor: str
    sku: str
    label: str
    source: str
    request_id: int | None
    created_at: datetime

    def photo(self) -> bytes:
        """The stored photo's bytes (a JPEG); decode them through `vision.decode` like any upload."""
        if self.photo_path is None:
            raise FileNotFoundError(f"the photo {self.photo_sha256} of pair {self.id} is not stored here")
        return self.photo_path.read_bytes()


def _record(workspace: Workspace, pair: ConfirmedPair) -> PairRecord:
    crop = tuple(float(v) for v in pair.crop) if pair.crop else None
    return PairRecord(
        id=pair.id,
        photo_sha256=pair.photo_sha256,
        photo_path=image_path(workspace, pair.photo_sha256),
        crop=crop,  # type: ignore[arg-type]
        product_id=pair.product_id,
        vendor=pair.vendor,
        sku=pair.sku,
        label=pair.label,
        source=pair.source,
        request_id=pair.request_id,
        created_at=utc(pair.created_at),  # type: ignore[arg-type]
    )


def list_pairs(sessions: sessionmaker, workspace: Workspace, labels: Sequence[str] = LABELS) -> list[PairRecord]:
    """Every recorded pair with one of `labels`, oldest first (missing photos included, path None)."""
    with sessions() as session:
        rows = session.scalars(
            select(ConfirmedPair).where(ConfirmedPair.label.in_(list(labels))).order_by(ConfirmedPair.id)
        ).all()
        return [_record(workspace, pair) for pair in rows]


def positive_pairs(sessions: sessionmaker, workspace: Workspace) -> list[PairRecord]:
    """One record per (photo, product) an operator offered or a customer accepted, oldest first; the
    `accepted` row where there is one (its `label` says which). Pairs whose photo is missing are left out."""
    chosen: dict[tuple[str, int], PairRecord] = {}
    for pair in list_pairs(sessions, workspace, POSITIVE):
        key = (pair.photo_sha256, pair.product_id)
        if key not in chosen or pair.label == ACCEPTED:
            chosen[key] = pair
    return sorted((p for p in chosen.values() if p.photo_path is not None), key=lambda p: p.id)


def negative_pairs(sessions: sessionmaker, workspace: Workspace) -> list[PairRecord]:
    """Rejected (photo, product) pairs that were not also offered or accepted, with their photo."""
    positive = {(p.photo_sha256, p.product_id) for p in list_pairs(sessions, workspace, POSITIVE)}
    return [
        p
        for p in list_pairs(sessions, workspace, (REJECTED,))
        if (p.photo_sha256, p.product_id) not in positive and p.photo_path is not None
    ]

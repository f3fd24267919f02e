"""The operator's refined search: the customer's photo (optionally cropped), extra words and
filters; the ranked result is stored as the request's next candidate round."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product, Vendor
from catalog.money import PriceError, parse_price
from catalog.search_service import QueryInput, SearchService
from catalog.workspace import Workspace
from index.filters import SearchFilter
from vision.errors import ImageRejected
from workflow import audit
from workflow.claims import actor, require_work_right
from workflow.errors import Invalid
from workflow.models import AuditEntry, Candidate, User
from workflow.requests_service import load_by_id
from workflow.uploads import read_photo


@dataclass(frozen=True)
class Refinement:
    crop: tuple[float, float, float, float] | None = None
    words: str = ""
    use_photo: bool = True
    min_price: float | None = None
    max_price: float | None = None
    category: str = ""
    vendor: str = ""
    in_stock: bool | None = None
    k: int = 24

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


def _number(text: str | None, name: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{name} must be a number.") from None
    if not math.isfinite(value):
        raise Invalid(f"{name} must be a finite number.")
    return value


def _price(text: str | None, name: str) -> float | None:
    """A price bound read by the one price grammar (`catalog.money`): `1,299` is 1299, as in offers."""
    if text is None or not text.strip():
        return None
    try:
        return float(parse_price(text))
    except PriceError as exc:
        raise Invalid(f"{name} must be a price, like 40 or 1,299.00 ({exc}).") from None


def parse_refinement(form: dict) -> Refinement:
    """Form fields to a refinement; Invalid names the field to fix."""
    crop = None
    parts = [form.get(f"crop_{n}") or "" for n in ("x", "y", "w", "h")]
    if any(p.strip() for p in parts):
        values = [_number(p, f"Crop {n}") for p, n in zip(parts, "xywh", strict=True)]
        if any(v is None for v in values):
            raise Invalid("Give all four crop numbers (x, y, width, height as fractions 0-1), or none.")
        x, y, w, h = (float(v) for v in values)  # type: ignore[arg-type]
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > 1.0001 or y + h > 1.0001:
            raise Invalid(
                "The crop must lie inside the photo: x, y ≥ 0, width and height > 0, x+width and y+height ≤ 1."
            )
        crop = (x, y, w, h)
    stock = form.get("in_stock") or ""
    refinement = Refinement(
        crop=crop,
        words=(form.get("words") or "").strip()[:500],
        use_photo=form.get("use_photo", "1") != "0",
        min_price=_price(form.get("min_price"), "Lowest price"),
        max_price=_price(form.get("max_price"), "Highest price"),
        category=(form.get("category") or "").strip(),
        vendor=(form.get("vendor") or "").strip(),
        in_stock=True if stock == "yes" else False if stock == "no" else None,
    )
    low, high = refinement.min_price, refinement.max_price
    if low is not None and high is not None and low > high:
        raise Invalid("The lowest price is above the highest price.")
    return refinement


@dataclass(frozen=True)
class FilterChoices:
    """The catalog's categories and vendors: what the re-search filters offer."""

    categories: list[str]
    vendors: list[str]


def filter_choices(session: Session) -> FilterChoices:
    # GROUP BY, not DISTINCT: PostgreSQL refuses SELECT DISTINCT ordered by an expression it does not select.
    categories = session.scalars(
        select(Product.category)
        .where(Product.category != "")
        .group_by(Product.category)
        .order_by(func.lower(Product.category))
    ).all()
    vendors = session.scalars(select(Vendor.name).order_by(func.lower(Vendor.name))).all()  # names are unique
    return FilterChoices(list(categories), list(vendors))


def _catalog_spelling(typed: str, known: list[str]) -> str:
    """`typed` as the catalog spells it (case-insensitive); unknown text is kept (it matches nothing)."""
    folded = typed.casefold()
    return next((k for k in known if k.casefold() == folded), typed)


def in_catalog_spelling(session: Session, how: Refinement) -> Refinement:
    """The refinement with its category and vendor spelled as in the catalog: `MUGS` finds `mugs`."""
    if not how.category and not how.vendor:
        return how
    choices = filter_choices(session)
    return replace(
        how,
        category=_catalog_spelling(how.category, choices.categories) if how.category else "",
        vendor=_catalog_spelling(how.vendor, choices.vendors) if how.vendor else "",
    )


def last_empty_search(session: Session, request_id: int) -> dict | None:
    """The latest re-search of the request if it found nothing (its filters), else None: the
    workbench then says so and marks the candidates it shows as the previous round."""
    entry = session.scalar(
        select(AuditEntry)
        .where(AuditEntry.request_id == request_id, AuditEntry.action == "search.refined")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if entry is None or not entry.detail or entry.detail.get("hits") != 0:
        return None
    return {k: v for k, v in entry.detail.items() if k not in ("round", "hits")}


@dataclass(frozen=True)
class Refined:
    round: int | None  # None: nothing matched, no round was stored
    hits: int


async def refine(
    sessions: sessionmaker, search: SearchService, workspace: Workspace, request_id: int, user: User, how: Refinement
) -> Refined:
    """Search again and store the hits as a new round. A search that finds nothing stores no round
    (the previous candidates stay) and is audited with `hits=0`."""

    def load() -> tuple[str, str, Refinement]:
        with sessions() as session:
            request = load_by_id(session, request_id)
            require_work_right(session, request, user, "search again")
            spelled = in_catalog_spelling(session, how)
            session.commit()  # an admin's override of another's claim is recorded (audit)
            return request.photo_sha256, request.words, spelled

    sha, customer_words, how = await asyncio.to_thread(load)
    photo = read_photo(workspace, sha) if how.use_photo else None
    words = " ".join(w for w in (customer_words if not how.words else "", how.words) if w).strip() or None
    if photo is None and not words:
        raise Invalid("Give some words to search with when the photo is not used.")
    search_filter = SearchFilter.of(
        min_price=how.min_price,
        max_price=how.max_price,
        categories=[how.category] if how.category else None,
        vendors=[how.vendor] if how.vendor else None,
        in_stock=how.in_stock,
    )
    try:
        hits = await search.search(
            QueryInput(
                image_bytes=photo,
                text=words,
                crop=how.crop if photo is not None else None,
                search_filter=search_filter,
                k=how.k,
            )
        )
    except (ImageRejected, ValueError) as exc:
        raise Invalid(f"The search could not run: {exc}") from None

    def save() -> Refined:
        with sessions() as session:
            if not hits:
                audit.record(session, actor(user), "search.refined", request_id, round=None, hits=0, **how.to_json())
                session.commit()
                return Refined(None, 0)
            latest = session.scalar(select(func.max(Candidate.round)).where(Candidate.request_id == request_id)) or 0
            round_ = latest + 1
            for rank, hit in enumerate(hits):
                session.add(
                    Candidate(
                        request_id=request_id,
                        round=round_,
                        rank=rank,
                        product_id=hit.product_id,
                        image_id=hit.image_id,
                        score=float(hit.score),
                        query=how.to_json(),
                    )
                )
            audit.record(
                session, actor(user), "search.refined", request_id, round=round_, hits=len(hits), **how.to_json()
            )
            session.commit()
            return Refined(round_, len(hits))

    return await asyncio.to_thread(save)

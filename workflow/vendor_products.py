"""What a vendor sees of its own products: a page of them with how each did, one product in full, and
the overview counts of the vendor's area.

Why the counts live here: "how often was it a candidate, offered, sold" is the concierge's record
(candidates, offers, paid orders), which only the workflow knows. A page of products gets its counts
from one grouped query over those tables (never one query per product), so a page of 50 costs the
same three index lookups whatever the catalog's size.

Every query is by the vendor's id from the signed-in account; another vendor's product is simply not
found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session, selectinload

from catalog.db import IngestJob, Product, Store, Vendor
from workflow.models import Candidate, Offer, now
from workflow.orders import Order

VENDOR_PAGE = 50  # products per page of the vendor's list
MAX_QUERY = 100


@dataclass(frozen=True)
class ProductCounts:
    """How a product did: in how many requests' candidate lists it was, offers sent with it, orders paid."""

    candidate: int = 0
    offered: int = 0
    sold: int = 0

    def to_json(self) -> dict[str, int]:
        return {"candidate": self.candidate, "offered": self.offered, "sold": self.sold}


@dataclass(frozen=True)
class VendorProduct:
    id: int
    sku: str
    title: str
    price: str
    currency: str
    in_stock: bool
    active: bool
    category: str
    counts: ProductCounts
    images: list[str] = field(default_factory=list)  # sha256 of each image, in order
    updated_at: datetime | None = None

    @property
    def image_url(self) -> str:
        """The first image's thumbnail (served by /images), or "" when it has none."""
        return f"/images/{self.images[0]}.jpg" if self.images else ""

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "sku": self.sku,
            "title": self.title,
            "price": self.price,
            "currency": self.currency,
            "in_stock": self.in_stock,
            "active": self.active,
            "image_url": self.image_url or None,
            "counts": self.counts.to_json(),
        }


@dataclass(frozen=True)
class ProductPage:
    products: list[VendorProduct]
    total: int
    page: int
    pages: int
    q: str
    page_size: int

    @property
    def first(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * self.page_size, self.total)


def counts_of(session: Session, product_ids: list[int]) -> dict[int, ProductCounts]:
    """Candidate, offer and sale counts of these products in one grouped query.

    A candidate counts once per request (the operator's re-searches list it again in later rounds);
    a sale is an order with a number (numbers are given when payment succeeds)."""
    if not product_ids:
        return {}
    candidates = (
        select(Candidate.product_id.label("pid"), literal("candidate").label("kind"), Candidate.request_id.label("ref"))
        .where(Candidate.product_id.in_(product_ids))
        .distinct()
    )
    offers = select(Offer.product_id, literal("offered"), Offer.id).where(Offer.product_id.in_(product_ids))
    sold = (
        select(Offer.product_id, literal("sold"), Order.id)
        .join(Order, Order.offer_id == Offer.id)
        .where(Offer.product_id.in_(product_ids), Order.number.is_not(None))
    )
    events = union_all(candidates, offers, sold).subquery()
    found: dict[int, dict[str, int]] = {}
    rows = session.execute(select(events.c.pid, events.c.kind, func.count()).group_by(events.c.pid, events.c.kind))
    for pid, kind, count in rows:
        found.setdefault(int(pid), {})[kind] = int(count)
    return {pid: ProductCounts(**kinds) for pid, kinds in found.items()}


def _view(product: Product, counts: ProductCounts) -> VendorProduct:
    return VendorProduct(
        id=product.id,
        sku=product.sku,
        title=product.title,
        price=str(product.price),
        currency=product.currency,
        in_stock=product.in_stock,
        active=product.active,
        category=product.category,
        counts=counts,
        images=[image.sha256 for image in product.images],
        updated_at=product.updated_at,
    )


def product_page(session: Session, vendor_id: int, page: int = 1, q: str = "", size: int | None = None) -> ProductPage:
    """One page of the vendor's products by title (`q` matches title or SKU, any case); a page past
    the end is the last page."""
    size = size or VENDOR_PAGE
    q = (q or "").strip()[:MAX_QUERY]
    mine = Product.vendor_id == vendor_id
    if q:
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        mine = mine & (
            func.lower(Product.title).like(pattern, escape="\\") | func.lower(Product.sku).like(pattern, escape="\\")
        )
    total = session.scalar(select(func.count()).select_from(Product).where(mine)) or 0
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    products = session.scalars(
        select(Product)
        .where(mine)
        .options(selectinload(Product.images))
        .order_by(Product.title, Product.id)
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    counts = counts_of(session, [p.id for p in products])
    return ProductPage([_view(p, counts.get(p.id, ProductCounts())) for p in products], total, page, pages, q, size)


def vendor_product(session: Session, vendor_id: int, product_id: int) -> VendorProduct | None:
    """One of the vendor's products with all its images and counts; None when it is not theirs."""
    product = session.scalar(
        select(Product)
        .where(Product.id == product_id, Product.vendor_id == vendor_id)
        .options(selectinload(Product.images))
    )
    if product is None:
        return None
    return _view(product, counts_of(session, [product.id]).get(product.id, ProductCounts()))


def vendor_name(session: Session, vendor_id: int) -> str:
    return session.scalar(select(Vendor.name).where(Vendor.id == vendor_id)) or ""


def overview_counts(session: Session, vendor_id: int) -> dict[str, int]:
    """The numbers on the vendor's overview page, each linking to the page that lists them."""
    products = session.execute(
        select(Product.active, func.count()).where(Product.vendor_id == vendor_id).group_by(Product.active)
    ).all()
    by_state = {bool(active): int(count) for active, count in products}
    return {
        "products": sum(by_state.values()),
        "active": by_state.get(True, 0),
        "inactive": by_state.get(False, 0),
        "offers_waiting": session.scalar(
            select(func.count())
            .select_from(Offer)
            .where(Offer.vendor_id == vendor_id, Offer.status == "sent", Offer.expires_at > now())
        )
        or 0,
        "orders_to_ship": session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.vendor_id == vendor_id, Order.number.is_not(None), Order.shipped_at.is_(None))
        )
        or 0,
        "stores": session.scalar(select(func.count()).select_from(Store).where(Store.vendor_id == vendor_id)) or 0,
        "jobs_running": session.scalar(
            select(func.count())
            .select_from(IngestJob)
            .where(IngestJob.vendor_id == vendor_id, IngestJob.status.in_(("queued", "running")))
        )
        or 0,
    }

"""Pickup at a store: an operator offers a product "to collect at store X" besides shipping, and the
customer who accepts such an offer may choose to collect it there (no address; name and phone still).

The store an offer may be collected from is kept beside the offer (`offer_pickups`), chosen by the
operator among the stores of the product's own vendor that hold it (quantity > 0) when the offer is
sent. Accepting with pickup is checked twice: `orders.check_delivery` asks for a pickup store (the
page passes the offer's), and `orders.record_intent` refuses, in the payment's own transaction, a
pickup whose store is not the offer's, so no client can name another store or pick up an offer that
has none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from catalog.db import Base, Product, Store, StoreStock
from workflow.errors import Invalid
from workflow.models import Offer


class OfferPickup(Base):
    """The store where an offer may be collected (absent: shipping only)."""

    __tablename__ = "offer_pickups"

    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)


@dataclass(frozen=True)
class PickupStore:
    """What a customer needs to collect an order: where and when."""

    id: int
    code: str
    name: str
    address: str
    postcode: str
    city: str
    country: str
    opening_hours: dict
    timezone: str

    def to_json(self) -> dict:
        from catalog.opening_hours import format_opening_hours

        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "address": self.address,
            "postcode": self.postcode,
            "city": self.city,
            "country": self.country,
            "opening_hours": format_opening_hours(self.opening_hours) if self.opening_hours else "",
        }


def _pickup_store(store: Store) -> PickupStore:
    return PickupStore(
        store.id,
        store.code,
        store.name,
        store.address,
        store.postcode,
        store.city,
        store.country,
        dict(store.opening_hours or {}),
        store.timezone,
    )


def store_by_id(session: Session, store_id: int | None) -> PickupStore | None:
    store = session.get(Store, store_id) if store_id else None
    return _pickup_store(store) if store is not None else None


def pickup_of(session: Session, offer_id: int) -> PickupStore | None:
    """The store the offer may be collected from, or None (shipping only)."""
    store = session.scalar(
        select(Store).join(OfferPickup, OfferPickup.store_id == Store.id).where(OfferPickup.offer_id == offer_id)
    )
    return _pickup_store(store) if store is not None else None


def pickups_of(session: Session, offer_ids: list[int]) -> dict[int, PickupStore]:
    """Each offer's pickup store, for a page of offers (one query)."""
    if not offer_ids:
        return {}
    rows = session.execute(
        select(OfferPickup.offer_id, Store)
        .join(Store, Store.id == OfferPickup.store_id)
        .where(OfferPickup.offer_id.in_(offer_ids))
    ).all()
    return {offer_id: _pickup_store(store) for offer_id, store in rows}


def offer_pickup(db: sessionmaker, offer_id: int) -> PickupStore | None:
    with db() as session:
        return pickup_of(session, offer_id)


def check_choice(session: Session, product_id: int, store_id: int) -> Store:
    """The store an operator chose for collecting `product_id`: one of the product's vendor's active
    stores holding it; otherwise `Invalid` saying why."""
    row = session.execute(
        select(Store, StoreStock.quantity)
        .join(Product, Product.vendor_id == Store.vendor_id)
        .outerjoin(StoreStock, (StoreStock.store_id == Store.id) & (StoreStock.product_id == Product.id))
        .where(Store.id == store_id, Product.id == product_id)
    ).one_or_none()
    if row is None:
        raise Invalid(f"The pickup store for product {product_id} is not one of its vendor's stores; choose again.")
    store, quantity = row
    if not store.active:
        raise Invalid(f"The store {store.name} is closed for good; choose another pickup store or ship.")
    if not quantity or quantity <= 0:
        raise Invalid(f"{store.name} no longer holds product {product_id}; choose another pickup store or ship.")
    return store


def parse_choices(form: dict, product_ids: list[int]) -> dict[int, int]:
    """The pickup store chosen per offered product (`pickup_<product id>` in the offers form; empty:
    shipping only)."""
    given: dict[int, int | None] = {}
    for product_id in product_ids:
        value = form.get(f"pickup_{product_id}") or ""
        if isinstance(value, list):
            value = value[-1] if value else ""
        if not value:
            continue
        try:
            given[product_id] = int(value)
        except ValueError:
            given[product_id] = 0
    return chosen_stores(given, "reload the page")


def chosen_stores(given: Mapping[int, int | None], advice: str = "use a candidate's pickup_choices") -> dict[int, int]:
    """{product: store} of the stores named (None: shipping only); `Invalid` for a number that is no
    row id, which names no store and would not even bind."""
    chosen: dict[int, int] = {}
    for product_id, store_id in given.items():
        if store_id is None:
            continue
        if not 0 < store_id < 2**63:
            raise Invalid(f"A pickup store is not valid; {advice}.")
        chosen[product_id] = store_id
    return chosen


def check_choices(db: sessionmaker, chosen: dict[int, int]) -> None:
    """Refuse the offers before any is sent when a chosen store cannot be used."""
    with db() as session:
        for product_id, store_id in chosen.items():
            check_choice(session, product_id, store_id)


def attach(session: Session, offers: Sequence[Offer], chosen: Mapping[int, int]) -> int:
    """In the offers' own transaction (`offers_service.send_offers`): record the pickup store of each
    offer whose product has one chosen; returns how many. Checked again here, as stock may have
    moved since the page was loaded: a store no longer usable refuses the whole send (`Invalid`,
    nothing sent), so no customer ever sees an offer without the pickup the operator chose."""
    attached = 0
    for offer in offers:
        store_id = chosen.get(offer.product_id)
        if store_id is None:
            continue
        check_choice(session, offer.product_id, store_id)
        session.add(OfferPickup(offer_id=offer.id, store_id=store_id))
        attached += 1
    return attached


def require_offer_store(session: Session, offer_id: int, store_id: int | None) -> None:
    """In the payment's transaction: a pickup must be at the offer's own pickup store."""
    from workflow.orders import DeliveryInvalid

    row = session.get(OfferPickup, offer_id)
    if row is None:
        raise DeliveryInvalid("delivery.kind", "This offer cannot be picked up at a store: please give an address.")
    if store_id != row.store_id:
        raise DeliveryInvalid("delivery.store", "This offer can be picked up only at the store it names.")

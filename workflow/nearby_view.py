""" "Where can I get it nearby" on the customer's and the operator's pages: the stores that hold each
instant match, candidate and offer, nearest first (name, distance, quantity, open now), the request's
shared location, the pickup store of each offer, and "in stock within N km" re-running the instant
search with the nearby product filter (so the page stays full instead of shrinking a short list).

The store facts come from `catalog.nearby` (the serving process's stock map); this module only
shapes them for the pages and the JSON API. Where that module is missing or fails, pages show no
stores rather than failing: nearby is an extra, never a reason for a request page to break."""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import Store, StoreStock
from catalog.nearby import Location, NearbyStock
from catalog.opening_hours import is_open
from workflow import locations, pickups
from workflow.models import CustomerRequest, now

log = logging.getLogger(__name__)

STORES_SHOWN = 3  # nearest stores per product on a card
PICKUP_CHOICES = 10  # stores an operator may choose from per candidate
MAX_WITHIN_KM = 500.0
EARTH_KM = 6371.0088


def _store_json(found: Any) -> dict:
    """One `catalog.nearby.StoreAvailability` in the shape of `/api/search` hits' `stores`."""
    return {
        "code": found.code,
        "name": found.name,
        "distance_km": round(float(found.distance_km), 2),
        "quantity": int(found.quantity),
        "open_now": found.open_now,
        "address": getattr(found, "address", ""),
    }


def point(where: locations.SharedLocation) -> Location:
    return Location(where.lat, where.lon, where.label)


def stores_near(
    stock: NearbyStock | None,
    product_ids: list[int],
    near: locations.SharedLocation,
    within_km: float | None = None,
    limit: int = STORES_SHOWN,
) -> dict[int, list[dict]]:
    """{product id: its nearest stores holding it}, from the serving process's stock map
    (`SearchService.nearby`, `catalog.nearby.NearbyStock.stores_for`); empty without one."""
    if not product_ids or stock is None:
        return {}
    try:
        found = stock.stores_for(list(product_ids), point(near), within_km=within_km, limit=limit)
    except Exception:  # nearby is an extra: a page never fails for it
        log.exception("nearby stores unavailable")
        return {}
    return {int(pid): [_store_json(s) for s in stores] for pid, stores in found.items()}


def _attach(items: list[dict], stores: dict[int, list[dict]]) -> None:
    for item in items:
        item["stores"] = stores.get(int(item["product_id"]), [])


def add_for_customer(session: Session, request: CustomerRequest, view: dict, stock: NearbyStock | None = None) -> dict:
    """The customer's view (`workflow.views.customer_view`) with `location`, each instant match's
    and offer's `stores` (with a location) and each offer's `pickup` store (None: shipping only)."""
    where = locations.location_of(session, request.id)
    view["location"] = where.to_json() if where else None
    offers = view.get("offers") or []
    chosen = pickups.pickups_of(session, [o["id"] for o in offers])
    for offer in offers:
        store = chosen.get(offer["id"])
        offer["pickup"] = store.to_json() if store else None
    if view.get("order"):
        order_store = _order_store(session, request)
        view["order"]["store"] = order_store
    if where is not None:
        matches = view.get("instant_matches") or []
        ids = sorted({int(m["product_id"]) for m in matches} | {int(o["product_id"]) for o in offers})
        stores = stores_near(stock, ids, where)
        _attach(matches, stores)
        _attach(offers, stores)
    return view


def _order_store(session: Session, request: CustomerRequest) -> dict | None:
    from workflow import orders

    order = orders.order_of(session, request.id)
    return orders.pickup_store_json(session, order) if order is not None else None


def add_for_operator(session: Session, request: CustomerRequest, view: dict, stock: NearbyStock | None = None) -> dict:
    """The workbench's view with the same stores on every candidate (with a location) and, per
    candidate, the stores an operator may offer pickup at (`pickup_choices`)."""
    add_for_customer(session, request, view, stock)
    candidates = view.get("candidates") or []
    where = locations.location_of(session, request.id)
    if where is not None:
        _attach(candidates, stores_near(stock, [int(c["product_id"]) for c in candidates], where))
    choices = pickup_choices(session, [int(c["product_id"]) for c in candidates], where)
    for candidate in candidates:
        candidate["pickup_choices"] = choices.get(int(candidate["product_id"]), [])
    return view


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


def pickup_choices(
    session: Session, product_ids: list[int], near: locations.SharedLocation | None
) -> dict[int, list[dict]]:
    """Per product, the active stores of its own vendor that hold it: nearest first with a location,
    by name without. One query for the page (these are the only stores `pickups.check_choice` takes)."""
    if not product_ids:
        return {}
    from catalog.db import Product

    rows = session.execute(
        select(StoreStock.product_id, StoreStock.quantity, Store)
        .join(Store, Store.id == StoreStock.store_id)
        .join(Product, Product.id == StoreStock.product_id)
        .where(
            StoreStock.product_id.in_(product_ids),
            StoreStock.quantity > 0,
            Store.active.is_(True),
            Store.vendor_id == Product.vendor_id,
        )
    ).all()
    moment = now()
    found: dict[int, list[dict]] = {}
    for product_id, quantity, store in rows:
        distance = km_between(near.lat, near.lon, store.lat, store.lon) if near else None
        try:
            open_now = is_open(store.opening_hours or {}, store.timezone or "UTC", moment)
        except Exception:  # a store with unreadable hours is never reported open
            open_now = False
        found.setdefault(int(product_id), []).append(
            {
                "store_id": store.id,
                "code": store.code,
                "name": store.name,
                "city": store.city,
                "quantity": int(quantity),
                "distance_km": round(distance, 1) if distance is not None else None,
                "open_now": open_now,
            }
        )
    for stores in found.values():
        stores.sort(key=lambda s: (s["distance_km"] if s["distance_km"] is not None else 0.0, s["name"]))
        del stores[PICKUP_CHOICES:]
    return found


def check_within_km(text: str | float | None) -> float | None:
    """The "in stock within N km" choice: None (no filter) or a distance of 1-500 km; `Invalid` else."""
    from workflow.errors import Invalid

    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise Invalid("`within_km` must be a number of kilometres, e.g. 10.") from None
    if not (0 < value <= MAX_WITHIN_KM) or value != value:
        raise Invalid(f"`within_km` must be more than 0 and at most {MAX_WITHIN_KM:.0f} km.")
    return value


def _query_facts(db: Any, token: str) -> tuple[str, str, locations.SharedLocation | None]:
    from workflow.requests_service import load_by_token

    with db() as session:
        request = load_by_token(session, token)
        return request.photo_sha256, request.words, locations.location_of(session, request.id)


def _hit_dicts(db: Any, hits: list, stores: dict[int, list[dict]]) -> list[dict]:
    """Search hits shaped like instant matches (photo, title, vendor, price) with their stores."""
    from catalog.db import ProductImage
    from workflow.views import image_url

    with db() as session:
        photos = dict(
            session.execute(
                select(ProductImage.id, ProductImage.sha256).where(ProductImage.id.in_([h.image_id for h in hits]))
            ).all()
        )
    return [
        {
            "product_id": h.product_id,
            "rank": rank,
            "score": round(h.score, 4),
            "title": h.title,
            "vendor": h.vendor,
            "price": h.price,
            "currency": h.currency,
            "category": h.category,
            "in_stock": h.in_stock,
            "image_url": image_url(photos.get(h.image_id, "")),
            "budget_state": None,
            "converted": None,
            "stores": stores.get(h.product_id, []),
        }
        for rank, h in enumerate(hits, start=1)
    ]


async def matches_within(db: Any, search: Any, settings: Any, token: str, within_km: float) -> list[dict]:
    """The request's photo (and words) searched again with "in stock at a store within `within_km`
    of the customer" as a product filter inside the index search (`QueryInput.in_stock_nearby`), so
    the page is as full as the catalog allows; each match with its stores within that distance.
    Empty without a location."""
    import asyncio

    from catalog.search_service import QueryInput
    from workflow.uploads import read_photo

    sha, words, where = await asyncio.to_thread(_query_facts, db, token)
    if where is None:
        return []
    photo = await asyncio.to_thread(read_photo, settings.workspace, sha)
    if photo is None and not words:
        return []
    query = QueryInput(
        image_bytes=photo,
        text=words or None,
        k=settings.instant_matches,
        near=point(where),
        within_km=within_km,
        in_stock_nearby=True,
    )
    hits = await search.search(query)
    stores = {h.product_id: [_store_json(s) for s in (h.stores or ())][:STORES_SHOWN] for h in hits}
    return await asyncio.to_thread(_hit_dicts, db, hits, stores)

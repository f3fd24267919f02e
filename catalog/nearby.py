""" "Where can I get it nearby": which stores near a customer hold a product, and the search filter
"in stock within N km" that keeps result pages full.

The Python API the pages use (customer request page, operator workbench; issue 15, part H):

- `Location(lat, lon, label)` and `catalog.geocoding.parse_near("lat,lon")` / `locate("postcode or
  city", country)` turn what the customer shared into a place (`geocoding.UnknownPlace`, a
  `ValueError`, names what was wrong).
- `SearchService.nearby` is this process's `NearbyStock`; `search.nearby.stores_for(product_ids,
  near, within_km=None, limit=3)` → `{product_id: [StoreAvailability, ...]}` nearest first (only
  stores with quantity > 0; `open_now` is True/False, or None when the store gave no hours).
- `QueryInput(..., near=Location, within_km=10.0, in_stock_nearby=True)` searches only products in
  stock within `within_km` of `near`, and fills `ProductHit.stores` (nearest first) for every hit
  whenever `near` is given. `nearby_filter(stock_map, near, within_km, base_filter)` is the
  `SearchFilter` that does it, for callers that search the index themselves.
- `StoreAvailability.to_json()` is the shape `POST /api/search` sends.

Why in memory: a stock feed can hold millions of (store, product) rows and every search asks about
them, so each serving process keeps a `StockMap` (store positions as numpy arrays, per store the
products it has, per product its stores) and reloads it in a background thread when the vendors'
`StockVersion` counters move (checked with one small query at most every `check_every` seconds).
Searches keep using the old map while the new one loads. The index is asked for "only these
products" with an `index.filters.AllowList` keyed by product (`catalog.ids`: a vector id is
`product << 4 | position`, customer views add bit 62, which the key mask drops), so the filtered
search returns full pages instead of a short list filtered afterwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from catalog.db import StockVersion, Store, Vendor
from catalog.opening_hours import is_open
from index.filters import AllowList, SearchFilter

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
DEFAULT_WITHIN_KM = 10.0
MAX_WITHIN_KM = 500.0
#: The key an `AllowList` compares: `(vector id >> 4) & (2**58 - 1)` is the product (see catalog.ids).
PRODUCT_KEY_SHIFT = 4
PRODUCT_KEY_BITS = 58
_FILTER_CACHE = 64  # distinct (place, radius) product lists kept per stock map
#: Per-store product bitsets (one bit per product) while they take at most this much memory: "what
#: is held within 10 km" is then an OR of a few hundred bitsets, not a scatter of millions of indices.
BITSET_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Location:
    """A point on Earth in degrees (WGS 84); `label` says what it came from ("Lyon", "48.85,2.35")."""

    lat: float
    lon: float
    label: str = ""

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0) or not (-180.0 <= self.lon <= 180.0):
            raise ValueError(f"latitude must be -90..90 and longitude -180..180, not {self.lat}, {self.lon}")

    def as_text(self) -> str:
        return f"{self.lat:.5f},{self.lon:.5f}"


@dataclass(frozen=True)
class StoreAvailability:
    """One store holding a product: how far from the customer, how many, and whether it is open now."""

    code: str
    name: str
    address: str
    distance_km: float
    quantity: int
    open_now: bool | None  # None: the store gave no opening hours
    store_id: int
    vendor: str

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "address": self.address,
            "vendor": self.vendor,
            "distance_km": round(self.distance_km, 2),
            "quantity": self.quantity,
            "open_now": self.open_now,
        }


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Great-circle distances in km from one point to many (vectorised)."""
    phi1, phi2 = np.radians(lat), np.radians(lats)
    dphi = phi2 - phi1
    dlambda = np.radians(lons) - np.radians(lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def check_within_km(value: float | None) -> float:
    """The radius to use: the default when None; `ValueError` naming `within_km` when out of range."""
    if value is None:
        return DEFAULT_WITHIN_KM
    if not np.isfinite(value) or not 0 < value <= MAX_WITHIN_KM:
        raise ValueError(f"within_km must be a distance in km above 0 and at most {MAX_WITHIN_KM:g}, not {value}")
    return float(value)


@dataclass(frozen=True)
class _StoreInfo:
    code: str
    name: str
    address: str
    vendor: str
    timezone: str
    hours: dict


class StockMap:
    """An immutable snapshot of every active store and its positive stock (searches share it)."""

    def __init__(
        self,
        version: tuple[int, int],
        stores: list[_StoreInfo],
        store_ids: np.ndarray,
        lats: np.ndarray,
        lons: np.ndarray,
        rows_store: np.ndarray,
        rows_product: np.ndarray,
        rows_quantity: np.ndarray,
    ) -> None:
        """`store_ids` sorted; `rows_*` the stock rows (store index into `stores`, product id, quantity > 0)."""
        self.version = version
        self.stores, self.store_ids = stores, store_ids
        self.lats, self.lons = lats.astype(np.float64), lons.astype(np.float64)
        self.products, product_index = np.unique(rows_product, return_inverse=True)
        product_index = product_index.astype(np.int32)
        # per store: which products (dense indices), for "what is in stock near here"
        by_store = np.argsort(rows_store, kind="stable")
        self._store_products = product_index[by_store]
        self._store_offsets = np.searchsorted(rows_store[by_store], np.arange(len(stores) + 1))
        # per product: which stores and how many, for "where is this one"
        by_product = np.argsort(product_index, kind="stable")
        self._product_stores = rows_store[by_product].astype(np.int32)
        self._product_quantity = rows_quantity[by_product].astype(np.int32)
        self._product_offsets = np.searchsorted(product_index[by_product], np.arange(len(self.products) + 1))
        self._bitsets = self._store_bitsets(len(stores))
        self._filters: OrderedDict[tuple[float, float, float], np.ndarray] = OrderedDict()
        self._filters_lock = threading.Lock()
        self._last_distances: tuple[tuple[float, float], np.ndarray] | None = None
        # per store: (minute, open then?), one entry per store at most; written whole (thread-safe)
        self._open_cache: dict[int, tuple[int, bool | None]] = {}

    def _store_bitsets(self, stores: int) -> np.ndarray | None:
        words = (len(self.products) + 63) // 64
        if not stores or not words or stores * words * 8 > BITSET_BYTES:
            return None
        packed = np.zeros((stores, words), dtype=np.uint64)
        row = np.zeros(words * 64, dtype=bool)  # one store's products at a time: the packed size, not 8x it
        for store in range(stores):
            held = self._store_products[self._store_offsets[store] : self._store_offsets[store + 1]]
            row[held] = True
            packed[store] = np.packbits(row, bitorder="little").view(np.uint64)
            row[held] = False
        return packed

    @property
    def rows(self) -> int:
        return len(self._product_stores)

    def distances(self, near: Location) -> np.ndarray:
        """Every store's distance from `near` in km. The last place's are kept: a search asks twice,
        for the product filter and then for the stores of its hits (read-only, shared)."""
        key = (near.lat, near.lon)
        last = self._last_distances
        if last is not None and last[0] == key:
            return last[1]
        distances = haversine_km(near.lat, near.lon, self.lats, self.lons)
        distances.setflags(write=False)
        self._last_distances = (key, distances)  # one tuple, swapped whole: safe between threads
        return distances

    def products_within(self, near: Location, within_km: float) -> np.ndarray:
        """Sorted ids of the products some store within `within_km` of `near` holds (quantity > 0)."""
        return self.products[self.held_within(near, within_km)]

    def held_within(self, near: Location, within_km: float) -> np.ndarray:
        """`products_within` as a boolean mask over `self.products` (what the index filter takes).

        Cached per place and radius: a customer's page asks again with each search (its place is
        stored, so it is the same point). Exact, not rounded: `stores_for` measures from the exact point,
        and a mask from a point metres away could keep a product whose only store lies just outside."""
        key = (float(near.lat), float(near.lon), float(within_km))
        with self._filters_lock:
            cached = self._filters.get(key)
            if cached is not None:
                self._filters.move_to_end(key)
                return cached
        close = np.flatnonzero(self.distances(near) <= within_km)
        if self._bitsets is not None and len(close):
            words = np.bitwise_or.reduce(self._bitsets[close], axis=0)
            held = np.unpackbits(words.view(np.uint8), count=len(self.products), bitorder="little").view(bool)
        else:
            held = np.zeros(len(self.products), dtype=bool)
            for store in close.tolist():
                held[self._store_products[self._store_offsets[store] : self._store_offsets[store + 1]]] = True
        with self._filters_lock:
            self._filters[key] = held
            while len(self._filters) > _FILTER_CACHE:
                self._filters.popitem(last=False)
        return held

    def forget_places(self) -> None:
        """Drop the cached product lists of `products_within` (a benchmark's fresh customers)."""
        with self._filters_lock:
            self._filters.clear()

    def stores_for(
        self,
        product_ids: Iterable[int],
        near: Location,
        within_km: float | None = None,
        limit: int = 3,
        at: datetime | None = None,
    ) -> dict[int, list[StoreAvailability]]:
        """Per product, up to `limit` stores holding it, nearest first (all distances when `within_km`
        is None). Every product asked about has an entry, empty when no store has it."""
        at = at or datetime.now(UTC)
        minute = int(at.timestamp() // 60)  # opening hours are to the minute: "open now" is too
        distances = self.distances(near) if len(self.stores) else np.empty(0)
        answer: dict[int, list[StoreAvailability]] = {}
        asked = np.fromiter((int(p) for p in product_ids), np.int64)
        positions = np.searchsorted(self.products, asked).tolist()
        for product, i in zip(asked.tolist(), positions, strict=True):
            answer[product] = []
            if i >= len(self.products) or self.products[i] != product:
                continue
            start, end = self._product_offsets[i], self._product_offsets[i + 1]
            stores, quantities = self._product_stores[start:end], self._product_quantity[start:end]
            far = distances[stores]
            if within_km is not None:
                keep = far <= within_km
                stores, quantities, far = stores[keep], quantities[keep], far[keep]
            for j in np.lexsort((stores, far))[:limit].tolist():
                store = int(stores[j])
                info = self.stores[store]
                known = self._open_cache.get(store)
                if known is None or known[0] != minute:
                    known = self._open_cache[store] = (minute, _open_now(info, at))
                answer[product].append(
                    StoreAvailability(
                        info.code,
                        info.name,
                        info.address,
                        float(far[j]),
                        int(quantities[j]),
                        known[1],
                        int(self.store_ids[store]),
                        info.vendor,
                    )
                )
        return answer


def _open_now(info: _StoreInfo, at: datetime) -> bool | None:
    if not info.hours:
        return None
    try:
        return is_open(info.hours, info.timezone, at)
    except (ValueError, KeyError):
        return None  # hours we cannot read: unknown rather than a guess


def stock_signature(sessions: sessionmaker) -> tuple[int, int]:
    """(vendors with a counter, sum of their counters): counters only rise, so any change moves it."""
    with sessions() as session:
        count, total = session.execute(
            select(func.count(StockVersion.vendor_id), func.coalesce(func.sum(StockVersion.version), 0))
        ).one()
    return int(count), int(total)


def load_stock_map(sessions: sessionmaker, chunk: int = 500_000) -> StockMap:
    """Read every active store and its positive stock from the database into a `StockMap`."""
    with sessions() as session:
        version = stock_signature(sessions)
        found = session.execute(
            select(
                Store.id,
                Store.code,
                Store.name,
                Store.address,
                Store.lat,
                Store.lon,
                Store.timezone,
                Store.opening_hours,
                Vendor.name,
            )
            .join(Vendor, Vendor.id == Store.vendor_id)
            .where(Store.active)
            .order_by(Store.id)
        ).all()
        store_ids = np.fromiter((row[0] for row in found), np.int64, len(found))
        stores = [_StoreInfo(r[1], r[2], r[3] or "", r[8], r[6] or "UTC", r[7] or {}) for r in found]
        lats = np.fromiter((row[4] for row in found), np.float64, len(found))
        lons = np.fromiter((row[5] for row in found), np.float64, len(found))
        parts: list[np.ndarray] = []
        # The driver's own cursor: plain tuples go into numpy at C speed (SQLAlchemy rows do not),
        # which matters at millions of rows.
        cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("SELECT store_id, product_id, quantity FROM store_stock WHERE quantity > 0")
            while batch := cursor.fetchmany(chunk):
                parts.append(np.array(batch, dtype=np.int64).reshape(-1, 3))
        finally:
            cursor.close()
    rows = np.concatenate(parts) if parts else np.empty((0, 3), np.int64)
    position = np.searchsorted(store_ids, rows[:, 0]) if len(store_ids) else np.zeros(len(rows), np.int64)
    position = np.minimum(position, max(len(store_ids) - 1, 0))
    known = (store_ids[position] == rows[:, 0]) if len(store_ids) else np.zeros(len(rows), bool)
    rows, position = rows[known], position[known]  # stock of inactive stores is not shown
    return StockMap(version, stores, store_ids, lats, lons, position.astype(np.int32), rows[:, 1], rows[:, 2])


class NearbyStock:
    """This process's current `StockMap`, reloaded in the background when the stock versions change."""

    def __init__(self, sessions: sessionmaker, check_every: float = 5.0) -> None:
        self.sessions = sessions
        self.check_every = check_every
        self._map: StockMap | None = None
        self._checked = 0.0
        self._loading = threading.Lock()  # one load at a time
        self._state = threading.Lock()

    def current(self) -> StockMap:
        """The map to answer with now: the first call loads it; later ones at most every `check_every`
        seconds ask whether the versions moved and, if so, reload in a thread while serving the old map."""
        stock = self._map
        if stock is None:
            return self.refresh()
        now = time.monotonic()
        with self._state:
            due = now - self._checked >= self.check_every
            if due:
                self._checked = now
        if due and not self._loading.locked():
            try:
                changed = stock_signature(self.sessions) != stock.version
            except Exception:  # a database hiccup must not break searches: keep the old map
                log.exception("could not read the stock versions; keeping the stock map")
                changed = False
            if changed:
                threading.Thread(target=self._reload_quietly, name="stock-map", daemon=True).start()
        return stock

    def refresh(self) -> StockMap:
        """Load the map now (waiting for a load in progress) and return it."""
        with self._loading:
            stock = self._map
            if stock is None or stock_signature(self.sessions) != stock.version:
                began = time.perf_counter()
                stock = load_stock_map(self.sessions)
                self._map = stock
                log.info(
                    "stock map: %d stores, %d rows, loaded in %.2f s",
                    len(stock.stores),
                    stock.rows,
                    time.perf_counter() - began,
                )
            self._checked = time.monotonic()
            return stock

    def _reload_quietly(self) -> None:
        try:
            self.refresh()
        except Exception:
            log.exception("reloading the stock map failed; keeping the old one")

    def stores_for(
        self, product_ids: Iterable[int], near: Location, within_km: float | None = None, limit: int = 3
    ) -> dict[int, list[StoreAvailability]]:
        """See `StockMap.stores_for` (on the current map)."""
        return self.current().stores_for(product_ids, near, within_km, limit)

    def products_within(self, near: Location, within_km: float) -> np.ndarray:
        """See `StockMap.products_within` (on the current map)."""
        return self.current().products_within(near, within_km)


def nearby_filter(
    stock: StockMap | NearbyStock, near: Location, within_km: float, base: SearchFilter | None = None
) -> SearchFilter:
    """`base` (or no condition) plus "only products in stock within `within_km` of `near`"."""
    stock_map = stock.current() if isinstance(stock, NearbyStock) else stock
    # A subset of the map's fixed product array: the index translates that array to its rows once
    # per stock map and index version, so each search costs a mask, not a lookup per product.
    held = stock_map.held_within(near, within_km)
    allow = AllowList.subset(stock_map.products, held, PRODUCT_KEY_SHIFT, PRODUCT_KEY_BITS)
    return replace(base, allow=allow) if base is not None else SearchFilter(allow=allow)

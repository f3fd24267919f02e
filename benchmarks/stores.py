"""`vitrine bench stores`: a photo search filtered to "in stock within 10 km" against the unfiltered
search, in one run, with recall against a brute-force answer.

The world (synthetic, fixed seed, in a scratch data folder that is deleted afterwards):
- `products` products of 20 vendors in the product database, one image vector each (512-d unit
  vectors around 10,000 random centres, the `bench index` generator) in a `VectorIndex` planned as
  the catalog's would be (inverted file with 8-bit codes and exact re-ranking above 50,000);
- `stores` stores clustered in the 40 largest French towns (GeoNames coordinates, the committed
  `catalog/places/fr_cities.csv`): a town gets stores in proportion to population^0.7, each placed
  around the town centre with a 3 km spread;
- `rows` (store, product) stock rows, the same number per store, products drawn with a popularity
  skew (weight 1/(rank+10)^0.9: some products are everywhere, the long tail in few stores), written
  with one bulk insert;
- customers placed like the population (a town by population, 4 km spread), one per query.

What is timed per query, alternating the two so both see the same machine: the unfiltered index
search (top k), and the nearby search as `POST /api/search` runs it after embedding: the product
filter (`catalog.nearby.nearby_filter`: stores within the radius → products → `AllowList`), the
filtered index search, and the stores of each hit (`stores_for`). Embedding and the database join
cost the same in both and are left out. Recall@k compares the filtered page with an exact scan of
exactly the allowed products' vectors.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from catalog.db import Product, StockVersion, Store, Vendor, database_url, make_engine, session_factory
from catalog.ids import image_id, product_id
from catalog.nearby import Location, load_stock_map, nearby_filter
from index.filters import ItemAttributes
from index.planner import plan_index
from index.vector_index import VectorIndex

VENDORS = 20
TOWNS = 40
STORE_SPREAD_KM = 3.0
CUSTOMER_SPREAD_KM = 4.0
KM_PER_DEGREE = 111.2
HOURS = {day: [["09:00", "19:00"]] for day in ("mo", "tu", "we", "th", "fr", "sa")} | {"su": []}


@dataclass
class StoresBenchSettings:
    products: int = 100_000
    stores: int = 1_000
    rows: int = 5_000_000
    queries: int = 300
    k: int = 10
    within_km: float = 10.0
    dim: int = 512
    seed: int = 0


def _towns() -> list[tuple[str, float, float, int]]:
    places = Path(__file__).resolve().parent.parent / "catalog" / "places" / "fr_cities.csv"
    with places.open(encoding="utf-8", newline="") as handle:
        rows = [
            (row["name"], float(row["lat"]), float(row["lon"]), int(row["population"]))
            for row in csv.DictReader(handle)
            if not row["name"].startswith("Paris ")  # Paris's arrondissements: Paris is one town here
        ]
    return rows[:TOWNS]


def _around(rng: np.random.Generator, lat: float, lon: float, spread_km: float, n: int) -> np.ndarray:
    dlat = rng.normal(0, spread_km / KM_PER_DEGREE, n)
    dlon = rng.normal(0, spread_km / (KM_PER_DEGREE * np.cos(np.radians(lat))), n)
    return np.stack([lat + dlat, lon + dlon], axis=1)


def _place_stores(rng: np.random.Generator, count: int) -> tuple[np.ndarray, list[str]]:
    towns = _towns()
    weight = np.array([t[3] for t in towns], float) ** 0.7
    per_town = np.maximum(1, np.floor(weight / weight.sum() * count)).astype(int)
    while per_town.sum() < count:
        per_town[np.argmax(weight / per_town)] += 1
    while per_town.sum() > count:
        per_town[np.argmax(per_town)] -= 1
    points, names = [], []
    for (name, lat, lon, _), n in zip(towns, per_town, strict=True):
        if n:
            points.append(_around(rng, lat, lon, STORE_SPREAD_KM, int(n)))
            names += [name] * int(n)
    return np.concatenate(points), names


def _customers(rng: np.random.Generator, count: int) -> list[Location]:
    towns = _towns()
    population = np.array([t[3] for t in towns], float)
    chosen = rng.choice(len(towns), size=count, p=population / population.sum())
    found = []
    for town in chosen.tolist():
        _, lat, lon, _ = towns[town]
        point = _around(rng, lat, lon, CUSTOMER_SPREAD_KM, 1)[0]
        found.append(Location(float(point[0]), float(point[1])))
    return found


def _stock_rows(rng: np.random.Generator, products: int, stores: int, rows: int) -> np.ndarray:
    """(store index, product index, quantity), `rows // stores` distinct products per store."""
    per_store = min(products, rows // stores)
    log_weight = -0.9 * np.log(np.arange(products) + 10.0)
    popularity = rng.permutation(products)  # which product has which popularity rank
    out = np.empty((per_store * stores, 3), np.int64)
    for store in range(stores):
        keys = log_weight + rng.gumbel(size=products)  # Gumbel top-k: a weighted draw without replacement
        chosen = np.sort(popularity[np.argpartition(-keys, per_store - 1)[:per_store]])
        part = out[store * per_store : (store + 1) * per_store]
        part[:, 0], part[:, 1] = store, chosen
        part[:, 2] = rng.integers(1, 20, per_store)
    return out


def _load_database(folder: Path, settings: StoresBenchSettings, rng: np.random.Generator, log: Callable) -> dict:
    """The scratch database: vendors, products, stores and stock, bulk-loaded. Returns timings and ids."""
    engine = make_engine(database_url(folder))
    began = time.perf_counter()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    vendors = [f"vendor{v:02d}" for v in range(VENDORS)]
    vendor_of = np.arange(settings.products) % VENDORS
    skus = [f"P{i:07d}" for i in range(settings.products)]
    pids = np.fromiter(
        (product_id(vendors[v], sku) for v, sku in zip(vendor_of.tolist(), skus, strict=True)),
        np.int64,
        settings.products,
    )
    points, towns = _place_stores(rng, settings.stores)
    stock = _stock_rows(rng, settings.products, settings.stores, settings.rows)
    with engine.begin() as connection:
        connection.execute(Vendor.__table__.insert(), [{"id": v + 1, "name": name} for v, name in enumerate(vendors)])
        connection.execute(
            Product.__table__.insert(),
            [
                {
                    "id": int(pid),
                    "vendor_id": int(v) + 1,
                    "sku": sku,
                    "title": sku,
                    "price": 10,
                    "currency": "EUR",
                    "row_hash": "-",
                }
                for pid, v, sku in zip(pids.tolist(), vendor_of.tolist(), skus, strict=True)
            ],
        )
        connection.execute(
            Store.__table__.insert(),
            [
                {
                    "id": s + 1,
                    "vendor_id": s % VENDORS + 1,
                    "code": f"S{s:05d}",
                    "name": f"{towns[s]} {s}",
                    "city": towns[s],
                    "country": "FR",
                    "lat": float(points[s, 0]),
                    "lon": float(points[s, 1]),
                    "timezone": "Europe/Paris",
                    "opening_hours": HOURS,
                }
                for s in range(settings.stores)
            ],
        )
        connection.execute(
            StockVersion.__table__.insert(), [{"vendor_id": v + 1, "version": 1} for v in range(VENDORS)]
        )
    loaded_catalog = time.perf_counter() - began
    began = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        # The product index is rebuilt once at the end: 5M random-order index inserts are what is slow.
        indexes = cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'store_stock' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        store_ids, product_ids, quantities = stock[:, 0] + 1, pids[stock[:, 1]], stock[:, 2]
        batch = 500_000
        for start in range(0, len(stock), batch):
            cursor.executemany(
                "INSERT INTO store_stock (store_id, product_id, quantity, updated_at) VALUES (?, ?, ?, ?)",
                zip(
                    store_ids[start : start + batch].tolist(),
                    product_ids[start : start + batch].tolist(),
                    quantities[start : start + batch].tolist(),
                    [now] * len(store_ids[start : start + batch]),
                    strict=True,
                ),
            )
            log(f"stock rows: {min(start + batch, len(stock)):,} of {len(stock):,}")
        for _, sql in indexes:
            cursor.execute(sql)
        raw.commit()
    finally:
        raw.close()
    loaded_stock = time.perf_counter() - began
    return {"engine": engine, "pids": pids, "catalog_s": loaded_catalog, "stock_s": loaded_stock}


def _build_index(pids: np.ndarray, settings: StoresBenchSettings, log: Callable) -> tuple[VectorIndex, np.ndarray]:
    from benchmarks.index_search import generate

    centres = np.random.default_rng(1).standard_normal((10_000, settings.dim)).astype(np.float32)
    vectors = np.concatenate(list(generate(len(pids), settings.dim, settings.seed + 2, centres)))
    plan = plan_index(len(pids), settings.dim, 4 * 10**9)
    index = VectorIndex(settings.dim, f"bench-{settings.dim}d", plan.spec)
    ids = np.fromiter((image_id(int(p), 0) for p in pids.tolist()), np.int64, len(pids))
    attributes = [ItemAttributes(price=10.0, vendor=f"v{i % VENDORS}") for i in range(len(pids))]
    log(f"index: {plan.spec.kind} over {len(pids):,} vectors")
    index.add(ids, vectors, attributes)
    return index, vectors


def _percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(array, 50)), 3), "p95_ms": round(float(np.percentile(array, 95)), 3)}


def run_stores_bench(settings: StoresBenchSettings, log: Callable[[str], None] = lambda _: None) -> dict:
    if settings.products < 1 or settings.stores < 1 or settings.rows < settings.stores:
        raise ValueError("need at least one product and one store, and at least one stock row per store")
    rng = np.random.default_rng(settings.seed)
    folder = Path(tempfile.mkdtemp(prefix="vitrine-bench-stores-"))
    try:
        log(f"scratch data folder {folder}")
        loaded = _load_database(folder, settings, rng, log)
        engine, pids = loaded["engine"], loaded["pids"]
        began = time.perf_counter()
        stock = load_stock_map(session_factory(engine))
        map_load_s = time.perf_counter() - began
        engine.dispose()
        log(f"stock map: {len(stock.stores):,} stores, {stock.rows:,} rows in {map_load_s:.1f} s")
        index, vectors = _build_index(pids, settings, log)
        centres = np.random.default_rng(1).standard_normal((10_000, settings.dim)).astype(np.float32)
        from benchmarks.index_search import generate

        queries = np.concatenate(list(generate(settings.queries, settings.dim, settings.seed + 3, centres)))
        customers = _customers(rng, settings.queries)
        k, radius = settings.k, settings.within_km
        for q in range(min(10, settings.queries)):  # warm-up: FAISS threads, caches
            index.search(queries[q], k)
            index.search(queries[q], k, nearby_filter(stock, customers[q], radius))
        plain_s, filtered_s, filter_only_s, selectivity, plain_recalls = [], [], [], [], []
        recalls, neighbour_recalls, full_pages, short_possible = [], [], 0, 0
        sorted_pids = np.sort(pids)
        for q in range(settings.queries):
            query, near = queries[q], customers[q]
            stock.forget_places()  # every customer is new: no cached product list
            t0 = time.perf_counter()
            plain_hits = index.search(query, k).ids[0]
            t1 = time.perf_counter()
            search_filter = nearby_filter(stock, near, radius)
            result = index.search(query, k, search_filter)
            t2 = time.perf_counter()
            hits = [int(i) >> 4 for i in result.ids[0] if i >= 0]
            stock.stores_for(hits, near, radius)
            t3 = time.perf_counter()
            plain_s.append(t1 - t0)
            filter_only_s.append(t2 - t1)
            filtered_s.append(t3 - t1)
            allowed = search_filter.allow.keys if search_filter.allow is not None else sorted_pids
            selectivity.append(len(allowed) / len(pids))
            exact_top = pids[np.argsort(-(vectors @ query), kind="stable")[:k]]
            plain_recalls.append(len(set(exact_top.tolist()) & {int(i) >> 4 for i in plain_hits if i >= 0}) / k)
            mask = np.isin(pids, allowed, assume_unique=True)
            # The query's true neighbours that are held nearby: does the filtered page keep them?
            near_and_allowed = set(exact_top[np.isin(exact_top, allowed, assume_unique=True)].tolist())
            if near_and_allowed:
                neighbour_recalls.append(len(near_and_allowed & set(hits)) / len(near_and_allowed))
            if mask.sum() >= k:
                short_possible += 1
                full_pages += int(len(hits) == k)
                scores = vectors[mask] @ query
                top = pids[mask][np.argsort(-scores, kind="stable")[:k]]
                recalls.append(len(set(top.tolist()) & set(hits)) / k)
        plain, filtered, filter_only = _percentiles(plain_s), _percentiles(filtered_s), _percentiles(filter_only_s)
        return {
            "benchmark": "stores",
            "products": settings.products,
            "stores": len(stock.stores),
            "stock_rows": stock.rows,
            "queries": settings.queries,
            "k": k,
            "within_km": radius,
            "index": index.spec.kind,
            "placement": f"stores in the {TOWNS} largest French towns (GeoNames), {STORE_SPREAD_KM} km spread",
            "load_s": {
                "catalog": round(loaded["catalog_s"], 1),
                "stock_rows": round(loaded["stock_s"], 1),
                "stock_map": round(map_load_s, 1),
            },
            "allowed_share": {
                "p50": round(float(np.median(selectivity)), 3),
                "min": round(float(np.min(selectivity)), 3),
                "max": round(float(np.max(selectivity)), 3),
            },
            "unfiltered": plain,
            "nearby_filter_and_search": filter_only,
            "nearby_with_stores": filtered,
            "ratio_p50": round(filtered["p50_ms"] / plain["p50_ms"], 2),
            "ratio_p95": round(filtered["p95_ms"] / plain["p95_ms"], 2),
            "target_ratio_p50": 2.0,
            f"recall_at_{k}": round(float(np.mean(recalls)), 4) if recalls else None,
            f"unfiltered_recall_at_{k}": round(float(np.mean(plain_recalls)), 4),
            f"held_neighbours_recall_at_{k}": round(float(np.mean(neighbour_recalls)), 4)
            if neighbour_recalls
            else None,
            "full_pages": f"{full_pages}/{short_possible}",
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)

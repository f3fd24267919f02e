""" "Where can I get it nearby": the stock map, stores nearest first, open now, the reload, and the
search filter "in stock within N km" keeping pages full (real ingest, real SQLite)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from catalogs import product_photo
from search_catalog import build_workspace
from sqlalchemy import select

from catalog.db import Product, StockVersion, Store, StoreStock, Vendor, make_engine, session_factory
from catalog.nearby import Location, NearbyStock, haversine_km, load_stock_map, nearby_filter
from catalog.search_service import QueryInput, SearchService
from vision.embedder import open_embedder

PARIS = Location(48.8566, 2.3522, "Paris")
LYON = Location(45.7640, 4.8357, "Lyon")
HOURS = {day: [["09:00", "19:00"]] for day in ("mo", "tu", "we", "th", "fr", "sa")} | {"su": []}
IN_PARIS = [0, 3, 5, 8, 13, 21, 34, 41]  # catalog rows stocked by some Paris store (acme 0-39, globex 40-59)


def _bump(session, vendor_id: int) -> None:
    row = session.get(StockVersion, vendor_id)
    if row is None:
        session.add(StockVersion(vendor_id=vendor_id, version=1))
    else:
        row.version += 1


@pytest.fixture(scope="module")
def service(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    workspace = build_workspace(tmp_path_factory.mktemp("nearby"), open_embedder("test-tiny", "onnx", store))
    engine = make_engine(workspace.database_url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        vendors = {v.name: v.id for v in session.scalars(select(Vendor))}
        products = {p.sku: p for p in session.scalars(select(Product))}

        def add_store(vendor: str, code: str, lat: float, lon: float, hours: dict) -> Store:
            shop = Store(
                vendor_id=vendors[vendor],
                code=code,
                name=f"{vendor} {code}",
                address=f"1 rue {code}",
                lat=lat,
                lon=lon,
                timezone="Europe/Paris",
                opening_hours=hours,
            )
            session.add(shop)
            session.flush()
            return shop

        louvre = add_store("acme", "louvre", 48.8606, 2.3376, HOURS)  # ~1.2 km from PARIS
        defense = add_store("acme", "defense", 48.8918, 2.2361, {})  # ~9.3 km, no hours given
        lyon = add_store("acme", "lyon", LYON.lat, LYON.lon, HOURS)
        marais = add_store("globex", "marais", 48.8590, 2.3620, HOURS)  # ~0.8 km
        closed = add_store("acme", "closed", 48.857, 2.353, HOURS)
        closed.active = False
        stock = [(louvre, 0, 2), (defense, 0, 7), (lyon, 0, 1), (louvre, 3, 1), (defense, 5, 4), (louvre, 8, 0)]
        stock += [(defense, 8, 3), (louvre, 13, 1), (defense, 21, 9), (louvre, 34, 2), (marais, 41, 6)]
        stock += [(lyon, 2, 5), (closed, 9, 5)]
        for shop, row, quantity in stock:
            sku = f"SKU-{row:05d}"
            session.add(StoreStock(store_id=shop.id, product_id=products[sku].id, quantity=quantity))
        for vendor_id in vendors.values():
            _bump(session, vendor_id)
    built = SearchService(workspace, sessions, "test-tiny", window_ms=2.0, max_batch=8)
    yield built, sessions, {sku: p.id for sku, p in products.items()}
    built.close()
    engine.dispose()


def _pid(products: dict[str, int], row: int) -> int:
    return products[f"SKU-{row:05d}"]


def test_haversine_matches_a_known_distance() -> None:
    paris_lyon = haversine_km(PARIS.lat, PARIS.lon, np.array([LYON.lat]), np.array([LYON.lon]))[0]
    assert paris_lyon == pytest.approx(392, abs=3)


def test_stores_nearest_first_with_quantity_and_open_now(service) -> None:
    _, sessions, products = service
    stock = load_stock_map(sessions)
    wednesday_noon = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # 12:00 in Paris
    found = stock.stores_for([_pid(products, 0), _pid(products, 2), _pid(products, 9)], PARIS, at=wednesday_noon)
    first = found[_pid(products, 0)]
    assert [s.code for s in first] == ["louvre", "defense", "lyon"]
    assert [s.quantity for s in first] == [2, 7, 1]
    assert first[0].distance_km == pytest.approx(1.2, abs=0.2)
    assert first[0].open_now is True and first[1].open_now is None  # no hours given: unknown
    assert first[2].distance_km > 390
    assert [s.code for s in found[_pid(products, 2)]] == ["lyon"]
    assert found[_pid(products, 9)] == []  # only an inactive store has it
    sunday = datetime(2026, 12, 6, 11, 0, tzinfo=UTC)
    assert stock.stores_for([_pid(products, 0)], PARIS, at=sunday)[_pid(products, 0)][0].open_now is False
    close = stock.stores_for([_pid(products, 0)], PARIS, within_km=5, limit=3)[_pid(products, 0)]
    assert [s.code for s in close] == ["louvre"]
    assert stock.stores_for([_pid(products, 0)], PARIS, limit=1)[_pid(products, 0)][0].code == "louvre"
    assert first[0].to_json().keys() >= {"code", "name", "distance_km", "quantity", "open_now"}


def test_products_within_a_radius(service) -> None:
    _, sessions, products = service
    stock = load_stock_map(sessions)
    assert set(stock.products_within(PARIS, 10).tolist()) == {_pid(products, r) for r in IN_PARIS}
    assert set(stock.products_within(PARIS, 2).tolist()) == {_pid(products, r) for r in (0, 3, 13, 34, 41)}
    assert set(stock.products_within(LYON, 10).tolist()) == {_pid(products, 0), _pid(products, 2)}
    assert len(stock.products_within(Location(0.0, 0.0), 100)) == 0


def test_search_in_stock_nearby_keeps_pages_full_and_lists_stores(service) -> None:
    search, _, products = service
    photo = product_photo(3)
    plain = asyncio.run(search.search(QueryInput(image_bytes=photo, k=5)))
    assert all(hit.stores is None for hit in plain) and "stores" not in plain[0].to_json()
    near = QueryInput(image_bytes=photo, k=5, near=PARIS, within_km=10, in_stock_nearby=True)
    hits = asyncio.run(search.search(near))
    allowed = {_pid(products, r) for r in IN_PARIS}
    assert len(hits) == 5, "a full page, not a short list filtered afterwards"
    assert {h.product_id for h in hits} <= allowed
    assert hits[0].sku == "SKU-00003"
    for hit in hits:
        assert hit.stores, hit.sku
        distances = [s.distance_km for s in hit.stores]
        assert distances == sorted(distances) and max(distances) <= 10
    everything = asyncio.run(search.search(QueryInput(image_bytes=photo, k=50, near=PARIS, in_stock_nearby=True)))
    assert {h.product_id for h in everything} == allowed  # every product in stock nearby, none missed
    listed = asyncio.run(search.search(QueryInput(image_bytes=photo, k=50, near=PARIS)))
    assert len(listed) == 50 and sum(1 for h in listed if h.stores) == len(IN_PARIS) + 1  # + the Lyon one


def test_nearby_filter_keeps_other_conditions(service) -> None:
    search, sessions, products = service
    from index.filters import SearchFilter

    stock = load_stock_map(sessions)
    combined = nearby_filter(stock, PARIS, 10, SearchFilter.of(vendors=["globex"]))
    assert combined.vendors == frozenset({"globex"}) and combined.allow is not None
    hits = asyncio.run(search.search(QueryInput(text="anything", k=10, search_filter=combined)))
    assert [h.product_id for h in hits] == [_pid(products, 41)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (QueryInput(text="x", in_stock_nearby=True), "needs near"),
        (QueryInput(text="x", near=PARIS, within_km=0), "within_km"),
        (QueryInput(text="x", near=PARIS, within_km=float("nan")), "within_km"),
        (QueryInput(text="x", near=PARIS, within_km=10_000), "within_km"),
    ],
)
def test_bad_nearby_queries(query: QueryInput, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        query.checked()


def test_the_map_reloads_when_a_stock_version_moves(service) -> None:
    _, sessions, products = service
    nearby = NearbyStock(sessions, check_every=0.0)
    before = nearby.current()
    assert nearby.current() is before  # nothing moved: the same map
    with sessions.begin() as session:
        louvre = session.scalars(select(Store).where(Store.code == "lyon")).one()
        session.add(StoreStock(store_id=louvre.id, product_id=_pid(products, 30), quantity=4))
        _bump(session, louvre.vendor_id)
    served = nearby.current()  # starts the reload in the background, answers with the old map
    assert served is before
    deadline = time.monotonic() + 10
    while nearby.current() is before and time.monotonic() < deadline:
        time.sleep(0.02)
    fresh = nearby.current()
    assert fresh is not before
    assert [s.code for s in fresh.stores_for([_pid(products, 30)], LYON)[_pid(products, 30)]] == ["lyon"]
    with sessions.begin() as session:  # leave the module's data as it was
        session.execute(StoreStock.__table__.delete().where(StoreStock.product_id == _pid(products, 30)))
        _bump(session, louvre.vendor_id)


def test_bitsets_and_the_plain_scatter_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-store bitsets (small maps) and the index scatter (maps too big for bitsets) give the same products."""
    import catalog.nearby as nearby
    from catalog.nearby import StockMap, _StoreInfo

    rng = np.random.default_rng(0)
    stores, products = 120, 5_000
    rows_store = np.repeat(np.arange(stores), 300).astype(np.int32)
    rows_product = np.concatenate([rng.choice(products, 300, replace=False) for _ in range(stores)]) * 16 + 5
    lats, lons = 48.85 + rng.normal(0, 0.05, stores), 2.35 + rng.normal(0, 0.05, stores)
    infos = [_StoreInfo(f"S{i}", "n", "", "v", "UTC", {}) for i in range(stores)]
    args = (
        (0, 0),
        infos,
        np.arange(stores),
        lats,
        lons,
        rows_store,
        rows_product,
        np.ones(len(rows_product), np.int64),
    )
    with_bits = StockMap(*args)
    monkeypatch.setattr(nearby, "BITSET_BYTES", 0)
    without = StockMap(*args)
    assert with_bits._bitsets is not None and without._bitsets is None
    for km in (0.3, 2.0, 5.0, 50.0):
        a, b = with_bits.held_within(PARIS, km), without.held_within(PARIS, km)
        assert a.dtype == bool and len(a) == len(with_bits.products)
        np.testing.assert_array_equal(a, b)
    assert 0 < with_bits.held_within(PARIS, 2.0).sum() < len(with_bits.products)

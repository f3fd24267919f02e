"""The demo's stores: each demo vendor gets shops in French towns with stock, once, and "nearby" finds them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from catalog.db import Product, StockVersion, Store, StoreStock, Vendor, database_url, make_engine, session_factory
from catalog.geocoding import locate
from catalog.nearby import load_stock_map
from demo.stores import DEMO_STORES, seed_demo_stores


def _catalog(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url(tmp_path))
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for number, name in enumerate(DEMO_STORES):
            vendor = Vendor(name=name)
            session.add(vendor)
            session.flush()
            for i in range(50):
                session.add(
                    Product(
                        id=number * 1000 + i + 1,
                        vendor_id=vendor.id,
                        sku=f"S{i}",
                        title=f"thing {i}",
                        price=10,
                        currency="EUR",
                        row_hash="-",
                    )
                )
    return engine, sessions


def test_each_vendor_gets_stores_with_stock_once(tmp_path: Path) -> None:
    engine, sessions = _catalog(tmp_path)
    try:
        first = seed_demo_stores(sessions)
        assert first == {name: len(stores) for name, stores in DEMO_STORES.items()}
        with sessions() as session:
            assert session.scalar(select(func.count(Store.id))) == sum(first.values())
            assert all(
                s.country == "FR" and s.opening_hours and 41 < s.lat < 51.5 for s in session.scalars(select(Store))
            )
            held = session.scalar(select(func.count()).select_from(StoreStock))
            assert 0.25 * 50 * sum(first.values()) < held < 0.55 * 50 * sum(first.values())
            assert session.scalar(select(func.count(StockVersion.vendor_id))) == len(DEMO_STORES)
            mismatched = session.scalar(
                select(func.count())
                .select_from(StoreStock)
                .join(Store, Store.id == StoreStock.store_id)
                .join(Product, Product.id == StoreStock.product_id)
                .where(Store.vendor_id != Product.vendor_id)
            )
            assert mismatched == 0  # a store holds only its own vendor's products
        assert seed_demo_stores(sessions) == dict.fromkeys(DEMO_STORES, 0)  # a second run adds nothing

        stock = load_stock_map(sessions)
        paris = locate("75001")
        in_paris = stock.products_within(paris, 10)
        assert len(in_paris) > 20
        nearest = stock.stores_for(in_paris[:5].tolist(), paris, within_km=10)
        assert all(stores and stores[0].distance_km < 10 for stores in nearest.values())
        assert len(stock.products_within(locate("Lille"), 10)) > 0
    finally:
        engine.dispose()

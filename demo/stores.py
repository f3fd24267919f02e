"""The demo's shops: each demo vendor gets a few stores in French towns, with stock for part of its
products, so "where can I get it nearby" has something to show in `vitrine demo`.

Coordinates are the towns' (GeoNames, via `catalog.geocoding`) nudged by a few hundred metres so two
vendors' stores in one town do not sit on the same point; the hours are typical shop hours in the
vendor's own syntax (`catalog.opening_hours`). Stock is deterministic for a seed: each store holds
about 40% of its vendor's products (1-12 of each). Run once per data folder: a vendor that already
has stores (the demo's or its own) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from catalog.db import Product, Store, StoreStock, Vendor
from catalog.geocoding import city
from catalog.opening_hours import parse_opening_hours
from catalog_ingest.stores import bump_stock_version

SHARE_IN_STOCK = 0.4


@dataclass(frozen=True)
class DemoStore:
    code: str
    town: str
    street: str
    postcode: str
    hours: str


DEMO_STORES: dict[str, tuple[DemoStore, ...]] = {
    "northwind-goods": (
        DemoStore("PAR-RIVOLI", "Paris", "120 rue de Rivoli", "75001", "Mo-Sa 10:00-20:00; Su closed"),
        DemoStore("PAR-BASTILLE", "Paris", "8 rue de la Roquette", "75011", "Tu-Sa 10:00-19:00; Su-Mo closed"),
        DemoStore("LYO-CENTRE", "Lyon", "30 rue de la République", "69002", "Mo-Sa 09:30-19:00"),
        DemoStore("LIL-GARE", "Lille", "12 place de la Gare", "59000", "Mo-Fr 09:00-18:30; Sa 10:00-17:00"),
    ),
    "atelier-sud": (
        DemoStore("MRS-VIEUX-PORT", "Marseille", "15 quai du Port", "13002", "Mo-Sa 10:00-19:00"),
        DemoStore("NCE-MASSENA", "Nice", "4 place Masséna", "06000", "Mo-Su 10:00-20:00"),
        DemoStore("TLS-CAPITOLE", "Toulouse", "2 rue du Taur", "31000", "Tu-Sa 10:00-19:00"),
        DemoStore("PAR-MARAIS", "Paris", "40 rue des Francs-Bourgeois", "75003", "Mo-Su 11:00-19:30"),
    ),
    "lumen-market": (
        DemoStore("BDX-SAINTE-CATHERINE", "Bordeaux", "90 rue Sainte-Catherine", "33000", "Mo-Sa 09:30-19:30"),
        DemoStore("NTE-COMMERCE", "Nantes", "3 place du Commerce", "44000", "Mo-Sa 10:00-19:00"),
        DemoStore("PAR-OPERA", "Paris", "25 boulevard Haussmann", "75009", "Mo-Sa 09:30-20:30; Su 11:00-19:00"),
    ),
}


def seed_demo_stores(sessions: sessionmaker, seed: int = 15) -> dict[str, int]:
    """Create the demo stores and their stock; returns {vendor: stores created} (0 when it had some)."""
    rng = np.random.default_rng(seed)
    created: dict[str, int] = {}
    with sessions() as session:
        for vendor_name, stores in DEMO_STORES.items():
            vendor_id = session.scalar(select(Vendor.id).where(Vendor.name == vendor_name))
            if vendor_id is None:
                continue
            if session.scalar(select(func.count(Store.id)).where(Store.vendor_id == vendor_id)):
                created[vendor_name] = 0
                continue
            products = np.array(
                session.scalars(select(Product.id).where(Product.vendor_id == vendor_id).order_by(Product.id)).all(),
                dtype=np.int64,
            )
            for number, spec in enumerate(stores):
                town = city(spec.town)
                shop = Store(
                    vendor_id=vendor_id,
                    code=spec.code,
                    name=f"{vendor_name.replace('-', ' ').title()} {spec.town} {spec.code.split('-', 1)[1].title()}",
                    address=f"{spec.street}, {spec.postcode} {spec.town}",
                    postcode=spec.postcode,
                    city=spec.town,
                    country="FR",
                    lat=round(town.lat + 0.004 * np.sin(number * 2.1 + len(vendor_name)), 6),
                    lon=round(town.lon + 0.006 * np.cos(number * 2.1 + len(vendor_name)), 6),
                    timezone=town.timezone,
                    opening_hours=parse_opening_hours(spec.hours),
                    phone="+33140000000",
                )
                session.add(shop)
                session.flush()
                held = products[rng.random(len(products)) < SHARE_IN_STOCK]
                session.add_all(
                    StoreStock(store_id=shop.id, product_id=int(p), quantity=int(rng.integers(1, 13))) for p in held
                )
            bump_stock_version(session, vendor_id)
            created[vendor_name] = len(stores)
        session.commit()
    return created

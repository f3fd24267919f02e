"""Stores with stock for the nearby tests: written straight into the database (as the vendor's store
form and stock feed would leave them), raising the vendor's stock version so the serving process's
stock map (`catalog.nearby.NearbyStock`) reloads."""

from __future__ import annotations

from sqlalchemy import select

from catalog.db import Product, StockVersion, Store, StoreStock, Vendor

#: Two French places the offline geocoder knows (catalog/geocoding.py): Paris (postcode 75001) and Lyon.
PARIS = (48.8566, 2.3522)
LYON = (45.7640, 4.8357)
ALWAYS_OPEN = {day: [["00:00", "24:00"]] for day in ("mo", "tu", "we", "th", "fr", "sa", "su")}


def product_id(sessions, vendor: str, sku: str) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.scalar(select(Product.id).join(Vendor).where(Vendor.name == vendor, Product.sku == sku))


def add_store(  # type: ignore[no-untyped-def]
    sessions, vendor: str, code: str, at: tuple[float, float], holds: dict[int, int], hours: dict | None = None
) -> int:
    """A store of `vendor` at `at` (lat, lon) holding `holds` ({product id: quantity}); its id."""
    with sessions() as session:
        vendor_id = session.scalar(select(Vendor.id).where(Vendor.name == vendor))
        store = Store(
            vendor_id=vendor_id,
            code=code,
            name=f"{vendor.title()} {code}",
            address=f"{len(code)} rue de Rivoli",
            postcode="75001",
            city="Paris",
            country="FR",
            lat=at[0],
            lon=at[1],
            timezone="Europe/Paris",
            opening_hours=ALWAYS_OPEN if hours is None else hours,
            phone="+33142000000",
        )
        session.add(store)
        session.flush()
        for product, quantity in holds.items():
            session.add(StoreStock(store_id=store.id, product_id=product, quantity=quantity))
        version = session.get(StockVersion, vendor_id)
        if version is None:
            session.add(StockVersion(vendor_id=vendor_id, version=1))
        else:
            version.version += 1
        session.commit()
        return store.id

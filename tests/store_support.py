"""Stores for tests of pages that show them: one store of the site's first vendor with a little stock."""

from __future__ import annotations

from sqlalchemy import select

from catalog.db import Product, Vendor
from catalog_ingest.stock import import_stock
from catalog_ingest.stores import check_store, save_store

A11Y_STORE = {
    "code": "A11Y-1",
    "name": "Berlin Mitte",
    "address": "Rosenthaler Str. 1",
    "postcode": "10119",
    "city": "Berlin",
    "country": "DE",
    "lat": "52.529",
    "lon": "13.401",
    "opening_hours": "Mo-Fr 09:00-20:00; Sa 10:00-18:00; Su closed",
    "phone": "030 901820",
    "timezone": "Europe/Berlin",
}


def a11y_store(site) -> str:  # type: ignore[no-untyped-def]
    """The code of a store (made once) of the first vendor, holding three of its products."""
    with site.sessions() as session:
        vendor_id = session.scalar(select(Vendor.id).order_by(Vendor.id).limit(1))
        save_store(session, vendor_id, check_store(A11Y_STORE))
        skus = session.scalars(select(Product.sku).where(Product.vendor_id == vendor_id).order_by(Product.sku).limit(3))
        rows = "".join(f"A11Y-1,{sku},{n + 1}\n" for n, sku in enumerate(skus))
        import_stock(session, vendor_id, "store,sku,quantity\n" + rows, "snapshot")
    return A11Y_STORE["code"]

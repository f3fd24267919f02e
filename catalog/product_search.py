"""Product search over the catalog index: image hits rolled up to products, joined with the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from catalog.catalog_index import CatalogIndex
from catalog.db import Product, Vendor
from catalog.ids import MAX_VECTORS_PER_PRODUCT, product_of_image
from catalog.metrics import timed
from index.filters import SearchFilter

if TYPE_CHECKING:
    from catalog.nearby import StoreAvailability


@dataclass(frozen=True)
class ProductHit:
    product_id: int
    sku: str
    vendor: str
    title: str
    price: str
    currency: str
    category: str
    in_stock: bool
    score: float
    image_id: int
    stores: tuple[StoreAvailability, ...] | None = None  # with a place to search near: nearest first

    def to_json(self) -> dict:
        shown = {
            "product_id": self.product_id,
            "sku": self.sku,
            "vendor": self.vendor,
            "title": self.title,
            "price": self.price,
            "currency": self.currency,
            "category": self.category,
            "in_stock": self.in_stock,
            "score": round(self.score, 5),
            "image_id": self.image_id,
        }
        if self.stores is not None:
            shown["stores"] = [store.to_json() for store in self.stores]
        return shown


def search_products(
    index: CatalogIndex,
    sessions: sessionmaker,
    query: np.ndarray,
    k: int = 10,
    search_filter: SearchFilter | None = None,
) -> list[ProductHit]:
    """Top-k products for a unit query vector: each product once, scored by its best-matching image.

    A product's vectors are its catalog images and its customer views (`catalog.ids`); the hit's
    `image_id` says which one matched (`ids.is_customer_view`)."""
    fetch = k
    while True:
        with timed("index"):
            result = index.index.search(query, fetch, search_filter)
        best: dict[int, tuple[float, int]] = {}
        for image, score in result.hits(0):
            product = product_of_image(image)
            if product not in best:
                best[product] = (score, image)
        exhausted = len(result.hits(0)) < fetch
        if len(best) >= k or exhausted or fetch >= k * MAX_VECTORS_PER_PRODUCT:
            break
        fetch *= 2
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
    with timed("database"), sessions() as session:
        rows = {
            p.id: (p, vendor)
            for p, vendor in session.execute(
                select(Product, Vendor.name).join(Vendor).where(Product.id.in_([pid for pid, _ in ranked]))
            )
        }
    hits = []
    for pid, (score, image) in ranked:
        if pid not in rows:
            continue  # indexed but not (yet) in the database: never shown
        product, vendor = rows[pid]
        hits.append(
            ProductHit(
                pid,
                product.sku,
                vendor,
                product.title,
                str(product.price),
                product.currency,
                product.category,
                product.in_stock,
                score,
                image,
            )
        )
    return hits

"""`vitrine doctor`: do the database, the vector store and the index agree, image by image?

Customer views (vectors with `catalog.ids.VIEW_FLAG`) belong to no catalog image: they are counted
(`customer_views`, included in the vector counts) but never reported as vectors without a product."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from catalog.catalog_index import CatalogIndex
from catalog.db import ProductImage, make_engine, session_factory
from catalog.ids import VIEW_FLAG
from catalog.workspace import Workspace
from index.vector_store import VectorStore


def check_workspace(workspace: Workspace) -> dict:
    """One report per model store: products without vectors, vectors without products, index drift."""
    engine = make_engine(workspace.database_url)
    with session_factory(engine)() as session:
        known = np.fromiter(session.scalars(select(ProductImage.id)), np.int64)
    engine.dispose()
    reports = []
    stores = sorted((workspace.home / "vectors").glob("*/store.json"))
    for meta in stores:
        store = VectorStore.open(meta.parent)
        live = store.live_ids()
        images = live[(live & VIEW_FLAG) == 0]
        catalog_index = CatalogIndex(workspace, store.model_id, store.dim)
        indexed = catalog_index.index.ids()
        catalog_index.close()
        reports.append(
            {
                "model_id": store.model_id,
                "images_in_database": len(known),
                "vectors_in_store": len(live),
                "vectors_in_index": len(indexed),
                "customer_views": len(live) - len(images),
                "images_without_vector": _sample(np.setdiff1d(known, images)),
                "vectors_without_product": _sample(np.setdiff1d(images, known)),
                "index_missing": _sample(np.setdiff1d(live, indexed)),
                "index_extra": _sample(np.setdiff1d(indexed, live)),
            }
        )
    healthy = bool(reports) and all(
        not (
            r["images_without_vector"]["count"]
            or r["vectors_without_product"]["count"]
            or r["index_missing"]["count"]
            or r["index_extra"]["count"]
        )
        for r in reports
    )
    if not reports and len(known) == 0:
        healthy = True
    return {"healthy": healthy, "models": reports}


def _sample(ids: np.ndarray) -> dict:
    return {"count": len(ids), "examples": [int(i) for i in ids[:10]]}

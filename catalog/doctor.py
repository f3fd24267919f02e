"""`vitrine doctor`: is the database sound, and do it, the vector store and the index agree, image by image?

The database gets its full integrity check (`catalog.db_check`, SQLite's `PRAGMA integrity_check`).
A saved index that cannot be loaded (a checksum mismatch, a missing version) is reported as
`corrupt` with the command that rebuilds it from the vector store, never raised; one missing while
the store holds vectors as `missing` (a server rebuilds and saves it when it starts).

Customer views (vectors with `catalog.ids.VIEW_FLAG`) belong to no catalog image: they are counted
(`customer_views`, included in the vector counts) but never reported as vectors without a product."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from catalog.catalog_index import CatalogIndex
from catalog.db import Product, ProductImage, make_engine, session_factory
from catalog.db_check import check_database
from catalog.ids import VIEW_FLAG
from catalog.workspace import Workspace
from index.errors import IndexError_, IndexNotFound
from index.persistence import read_manifest
from index.vector_store import VectorStore


def check_workspace(workspace: Workspace) -> dict:
    """The database's integrity, then one report per model store: products without vectors, vectors
    without products, index drift, and the saved index's state (`ok`, `missing` or `corrupt`)."""
    engine = make_engine(workspace.database_url)
    try:
        database = check_database(engine, thorough=True, deadline_s=None).to_json()
        try:
            with session_factory(engine)() as session:
                # A deactivated product's vectors are out of the store on purpose (catalog_ingest.product_edits).
                active = select(ProductImage.id).join(Product).where(Product.active)
                known: np.ndarray | None = np.fromiter(session.scalars(active), np.int64)
        except SQLAlchemyError as exc:
            known = None
            database["ok"] = False
            database["problems"].append(f"reading the product images failed: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    reports = []
    stores = sorted((workspace.home / "vectors").glob("*/store.json"))
    for meta in stores:
        store = VectorStore.open(meta.parent)
        reports.append(_check_model(workspace, store, known))
    healthy = database["ok"] and all(_model_healthy(r) for r in reports)
    if not reports and known is not None and len(known) and database["ok"]:
        healthy = False  # products, and no vectors at all
    return {"healthy": bool(healthy), "database": database, "models": reports}


def _check_model(workspace: Workspace, store: VectorStore, known: np.ndarray | None) -> dict:
    live = store.live_ids()
    images = live[(live & VIEW_FLAG) == 0]
    rebuild = f"vitrine index rebuild --model {store.model_id}"
    index_state: dict = {"status": "ok"}
    indexed: np.ndarray | None = None
    try:
        read_manifest(workspace.index_dir(store.model_id))
    except IndexNotFound as exc:
        if len(live):
            index_state = {"status": "missing", "error": str(exc), "fix": rebuild}
    except IndexError_ as exc:
        index_state = {"status": "corrupt", "error": str(exc), "fix": rebuild}
    if index_state["status"] != "corrupt":
        try:
            catalog_index = CatalogIndex(workspace, store.model_id, store.dim)
        except IndexError_ as exc:
            index_state = {"status": "corrupt", "error": str(exc), "fix": rebuild}
        else:
            indexed = catalog_index.index.ids()
            catalog_index.close()
    unknown = {"count": None, "examples": []}
    return {
        "model_id": store.model_id,
        "images_in_database": None if known is None else len(known),
        "vectors_in_store": len(live),
        "vectors_in_index": None if indexed is None else len(indexed),
        "customer_views": len(live) - len(images),
        "images_without_vector": unknown if known is None else _sample(np.setdiff1d(known, images)),
        "vectors_without_product": unknown if known is None else _sample(np.setdiff1d(images, known)),
        "index_missing": unknown if indexed is None else _sample(np.setdiff1d(live, indexed)),
        "index_extra": unknown if indexed is None else _sample(np.setdiff1d(indexed, live)),
        "index": index_state,
    }


def _model_healthy(report: dict) -> bool:
    counts = ("images_without_vector", "vectors_without_product", "index_missing", "index_extra")
    return report["index"]["status"] == "ok" and all(report[name]["count"] == 0 for name in counts)


def _sample(ids: np.ndarray) -> dict:
    return {"count": len(ids), "examples": [int(i) for i in ids[:10]]}

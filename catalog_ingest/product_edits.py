"""A vendor's edits of one product, without a file: price, online stock, deactivate and reactivate.

Why here: this is vendor data coming in, like an ingest, and it must reach the same two places an
ingest writes, the database and the vectors. Search filters (price, in stock) read the attributes
kept with every vector (`index.filters.ItemAttributes`), not the database, so an edited price is
written again with each of the product's vectors (its catalog images and its live customer views)
exactly as `catalog_ingest.ingest` writes them: an upsert in the Parquet vector store.

A deactivated product must never be found, and pages must stay full: its vectors are taken out of
the index (tombstones in the store, `VectorStore.delete`), not filtered out after the search. So
that reactivating needs no re-embedding, the vectors are first kept aside, per model, in the
store's own folder (`inactive/<product>.npz`, which the store ignores and backups copy with it),
and written back, with the product's current attributes, when it is reactivated.

Where vectors go (`VectorSink`): in the serving app, the search service's live index
(`ServingSink`: searchable at once, persisted through the store, see
`SearchService.write_vectors`); every other model's store directly (`StoreSink`), which a serving
process picks up at its next refresh. Each store's appends are numbered under its own lock
(`VectorStore.append`), so an ingest running meanwhile loses nothing.

Order: the vectors first, then the database commit. A failed vector write leaves the database
untouched; a commit that fails after it leaves vectors that the same edit, sent again, puts right
(every edit writes the target state, so repeating one is harmless). A process that dies between
the two leaves a product shown or hidden against its flag: `repair_visibility`, run when the app
starts, puts every product's vectors back in line with its flag.

One edit of a store's products at a time, across processes: an flock per store (`_editing`) is
held from the read of the product to the commit, by edits and by `hide_inactive` alike, so a
price edit racing a deactivation in another worker process can never write back the vectors of a
product that the other has just hidden.

The next ingest of the vendor's file sets price and stock from the file again (the file is the
vendor's back office); an ingest keeps a deactivated product out of search.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from catalog.db import Product, Vendor
from catalog.ids import MAX_VIEWS_PER_PRODUCT, view_image_id
from catalog.money import PriceError, parse_price
from catalog.search_service import SearchService
from catalog.workspace import Workspace
from index.file_lock import exclusive_lock
from index.filters import ItemAttributes
from index.vector_store import STORE_FILE, VectorStore

INACTIVE_FOLDER = "inactive"
EDIT_LOCK = ".edits.lock"  # in the inactive folder: the store's own files are left alone


class ProductNotFound(LookupError):
    """No such product for this vendor (another vendor's product is reported the same way)."""


class ProductEditRefused(ValueError):
    """An edit that cannot be applied; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class VectorSink(Protocol):
    """A model's vectors: read from `store`, written and removed through the sink."""

    store: VectorStore

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...


class StoreSink:
    """A vector store alone: searches see the rows once an index is refreshed or built from it."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None:
        self.store.append(ids, vectors, attributes)

    def remove(self, ids: np.ndarray) -> None:
        self.store.delete(ids)


class ServingSink:
    """The serving app's live index (under its lock) and, through it, its vector store."""

    def __init__(self, search: SearchService) -> None:
        self.search = search

    @property
    def store(self) -> VectorStore:
        return self.search.index.store

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None:
        self.search.write_vectors(ids, vectors, attributes)

    def remove(self, ids: np.ndarray) -> None:
        self.search.remove_vectors(ids)


def sinks_of(workspace: Workspace, serving: SearchService | None = None) -> list[VectorSink]:
    """Every model's store in `workspace`; the serving model's through its live index."""
    serving_dir = serving.index.store.directory.resolve() if serving is not None else None
    sinks: list[VectorSink] = []
    if serving is not None:
        sinks.append(ServingSink(serving))
    for meta in sorted((workspace.home / "vectors").glob(f"*/{STORE_FILE}")):
        if meta.parent.resolve() != serving_dir:
            sinks.append(StoreSink(VectorStore.open(meta.parent)))
    return sinks


@dataclass(frozen=True)
class EditedProduct:
    """A product as the vendor sees it after an edit."""

    id: int
    sku: str
    title: str
    price: Decimal
    currency: str
    in_stock: bool
    active: bool


def parse_edit_price(text: str | None, currency: str) -> Decimal:
    """The project's one money parser, in the product's currency; a zero price is refused."""
    try:
        return parse_price(text or "", currency=currency, positive=True)
    except PriceError as exc:
        raise ProductEditRefused("price", f"{exc} (a price in {currency}, e.g. 12.50)") from None


@contextlib.contextmanager
def _editing(sinks: Sequence[VectorSink]) -> Iterator[None]:
    """Hold the edit lock of every sink's store (in one order, so two holders never deadlock): an
    flock, so it excludes other threads and other processes alike, and dies with its process."""
    with contextlib.ExitStack() as held:
        for directory in sorted({sink.store.directory.resolve() for sink in sinks}):
            folder = directory / INACTIVE_FOLDER
            folder.mkdir(exist_ok=True)
            held.enter_context(exclusive_lock(folder / EDIT_LOCK))
        yield


def edit_product(
    sessions: sessionmaker,
    sinks: Sequence[VectorSink],
    vendor_id: int,
    product_id: int,
    *,
    price: str | None = None,
    in_stock: bool | None = None,
    active: bool | None = None,
) -> EditedProduct:
    """Apply the given changes (None: unchanged) to the vendor's product and its vectors.

    `ProductNotFound` when the product is not this vendor's; `ProductEditRefused` for a bad price
    (nothing is changed then)."""
    with _editing(sinks), sessions() as session:
        product = _product_of(session, vendor_id, product_id)
        if price is not None:
            product.price = parse_edit_price(price, product.currency)
        if in_stock is not None:
            product.in_stock = bool(in_stock)
        if active is not None:
            product.active = bool(active)
        vendor = session.scalar(select(Vendor.name).where(Vendor.id == product.vendor_id)) or ""
        sync_vectors(product, vendor, sinks)
        session.commit()
        return EditedProduct(
            product.id,
            product.sku,
            product.title,
            product.price,
            product.currency,
            product.in_stock,
            product.active,
        )


def _product_of(session: Session, vendor_id: int, product_id: int) -> Product:
    product = session.scalar(
        select(Product).where(Product.id == product_id, Product.vendor_id == vendor_id).with_for_update()
    )
    if product is None:
        raise ProductNotFound(f"There is no product {product_id} in your catalog.")
    return product


def vector_ids_of(product: Product) -> np.ndarray:
    """Every id the product may have vectors under: its catalog images and its customer-view slots."""
    images = [image.id for image in product.images]
    views = [view_image_id(product.id, slot) for slot in range(MAX_VIEWS_PER_PRODUCT)]
    return np.asarray(images + views, np.int64)


def sync_vectors(product: Product, vendor: str, sinks: Sequence[VectorSink]) -> None:
    """Make every sink hold what `product`'s state asks: its vectors with its current attributes when
    active, none (kept aside) when not. Idempotent."""
    ids = vector_ids_of(product)
    attributes = ItemAttributes(float(product.price), product.category, vendor, product.in_stock)
    for sink in sinks:
        if product.active:
            _show(sink, product.id, ids, attributes)
        else:
            _hide(sink, product.id, ids)


def _stash_path(store: VectorStore, product_id: int) -> Path:
    return store.directory / INACTIVE_FOLDER / f"{product_id}.npz"


def _show(sink: VectorSink, product_id: int, ids: np.ndarray, attributes: ItemAttributes) -> None:
    """`ids`: every id the product may have vectors under now; a kept row of an image the product
    no longer has (an ingest dropped it while the product was hidden) is not brought back."""
    stash = _stash_path(sink.store, product_id)
    found, vectors = sink.store.vectors_of(ids)
    if stash.is_file():
        with np.load(stash) as kept:
            kept_ids, kept_vectors = kept["ids"], kept["vectors"]
        # A live row (written since) wins over the kept one; an image dropped since stays dropped.
        fresh = np.isin(kept_ids, ids[found], invert=True) & np.isin(kept_ids, ids)
        all_ids = np.concatenate([ids[found], kept_ids[fresh]])
        all_vectors = np.concatenate([vectors[found], kept_vectors[fresh]])
    else:
        all_ids, all_vectors = ids[found], vectors[found]
    if len(all_ids):
        sink.write(all_ids, all_vectors, [attributes] * len(all_ids))
    stash.unlink(missing_ok=True)


def _hide(sink: VectorSink, product_id: int, ids: np.ndarray) -> bool:
    """Keep the product's live vectors aside and remove them; whether there were any."""
    found, vectors = sink.store.vectors_of(ids)
    if not found.any():
        return False  # already hidden (or never indexed under this model)
    stash = _stash_path(sink.store, product_id)
    keep_ids, keep_vectors = ids[found], vectors[found]
    if stash.is_file():  # rows written while it was hidden (an ingest) join the ones kept before
        with np.load(stash) as kept:
            older = np.isin(kept["ids"], keep_ids, invert=True)
            keep_ids = np.concatenate([keep_ids, kept["ids"][older]])
            keep_vectors = np.concatenate([keep_vectors, kept["vectors"][older]])
    _write_stash(stash, keep_ids, keep_vectors)
    sink.remove(ids[found])
    return True


def _write_stash(path: Path, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Written aside, fsynced and renamed: a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    with temporary.open("wb") as handle:
        np.savez(handle, ids=np.asarray(ids, np.int64), vectors=np.asarray(vectors, np.float32))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def hide_inactive(sessions: sessionmaker, sinks: Sequence[VectorSink], product_ids: Sequence[int] | None) -> int:
    """Take the vectors of those of `product_ids` (None: every product) that are deactivated out of
    `sinks` again, after an ingest or a re-embed wrote them; returns how many products had vectors
    to take out."""
    if product_ids is not None and not len(product_ids):
        return 0
    # Images loaded with the products: `vector_ids_of` reads them, one query each otherwise.
    query = select(Product).where(Product.active.is_(False)).options(selectinload(Product.images))
    if product_ids is not None:
        query = query.where(Product.id.in_([int(p) for p in product_ids]))
    with _editing(sinks), sessions() as session:
        hidden = 0
        for product in session.scalars(query):
            ids = vector_ids_of(product)
            hidden += any([_hide(sink, product.id, ids) for sink in sinks])  # every sink, not the first only
        return hidden


def repair_visibility(sessions: sessionmaker, sinks: Sequence[VectorSink]) -> dict[str, int]:
    """Put every product's vectors in line with its flag, after a process died between an edit's
    vector write and its commit: a deactivated product still searchable is hidden, an active one
    whose vectors were kept aside is shown again, and what was kept for a product that no longer
    exists is deleted. Counts of each, for the log. Cheap when nothing is wrong: one lookup per
    deactivated product and one per kept file."""
    repaired = {"hidden": hide_inactive(sessions, sinks, None), "shown": 0, "dropped": 0}
    with _editing(sinks), sessions() as session:
        for sink in sinks:
            kept = {int(path.stem): path for path in _stashes(sink.store)}
            if not kept:
                continue
            found = {
                product.id: product
                for start in range(0, len(kept), 500)
                for product in session.scalars(
                    select(Product)
                    .where(Product.id.in_(sorted(kept)[start : start + 500]))
                    .options(selectinload(Product.images))
                )
            }
            for pid, path in kept.items():
                product = found.get(pid)
                if product is None:
                    path.unlink(missing_ok=True)
                    repaired["dropped"] += 1
                elif product.active:
                    vendor = session.scalar(select(Vendor.name).where(Vendor.id == product.vendor_id)) or ""
                    attributes = ItemAttributes(float(product.price), product.category, vendor, product.in_stock)
                    _show(sink, pid, vector_ids_of(product), attributes)
                    repaired["shown"] += 1
    return repaired


def _stashes(store: VectorStore) -> list[Path]:
    """The kept-aside vector files of a store's deactivated products (not the temporaries)."""
    folder = store.directory / INACTIVE_FOLDER
    return [path for path in folder.glob("*.npz") if path.stem.isdigit()] if folder.is_dir() else []

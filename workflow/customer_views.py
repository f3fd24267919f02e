"""Customer views: a confirmed customer photo kept as one more vector of its product.

Catalog shots are clean studio photos; customers send phone photos of the real thing. Once an
operator has confirmed that a customer's photo shows a product (an offer, or an imported pair), that
photo, cropped as the operator searched it, is embedded and written into the index as an extra
vector of the product (id `catalog.ids.view_image_id(product, slot)`). The next customer with a
similar photo finds the product through it; search's roll-up counts it as the product's image.

The cap: 16 slots per product. A new view takes a slot no view has held yet, else the slot of a
removed view, else (all 16 live) the oldest view whose (photo, product) no customer accepted, else,
only when the new view is itself accepted, the oldest view of all; otherwise it is not added
(`full`). A replaced view is marked removed (by nobody: `removed_by_id` NULL) and its row stays, so
it is never added again; so does a view an operator removed (`remove_view`). One view per (product,
photo) ever: re-sending or re-importing a pair adds nothing.

Where vectors go (`ViewTarget`): in the serving app, the `SearchService`'s live index
(`serving_target`; searchable at once, persisted through the vector store, see
`SearchService.write_vectors`); offline (`vitrine pairs import --views`), the model's vector store
(`offline_target`), which a serving app picks up within its refresh interval and every index build
includes. A view's attributes are its product's (price, category, vendor, stock), as ingest writes
them, so filtered searches treat it like the product's own images; a later price change reaches the
view when `write_all_views` next runs.

Database first, then vectors, then commit: a failed vector write rolls the rows back; a commit that
fails after it leaves at worst a vector that `write_all_views` or a removal puts right.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product, Vendor
from catalog.ids import MAX_VIEWS_PER_PRODUCT, view_image_id
from catalog.search_service import SearchService
from catalog.workspace import Workspace
from index.errors import IndexMismatch
from index.filters import ItemAttributes
from index.vector_store import VectorStore
from vision.embedder import Embedder
from vision.errors import ImageRejected
from vision.micro_batch import load_query_pixels
from workflow import audit
from workflow.claims import actor, refuse_if_held_by_other
from workflow.errors import Conflict, NotFound
from workflow.models import ConfirmedPair, CustomerView, User, now, utc
from workflow.pairs import ACCEPTED, POSITIVE
from workflow.requests_service import load_by_id
from workflow.uploads import read_photo

log = logging.getLogger("vitrine.views")
BATCH = 32  # photos embedded (and vectors written) together
# Slots are chosen by reading which are held: one batch at a time in a process, so two operators
# sending offers for one product at once do not pick the same slot (across processes, the unique
# image_id refuses the second, which then fails as a whole and is logged).
_choosing_slots = threading.Lock()


class VectorSink(Protocol):
    """Where view vectors are written: `CatalogIndex` is one; see `StoreSink` and `ServingSink`."""

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...


class StoreSink:
    """The vector store alone (offline: no index in memory); searches see the rows once an index
    is opened, refreshed or built from the store."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None:
        self.store.append(ids, vectors, attributes)

    def remove(self, ids: np.ndarray) -> None:
        self.store.delete(ids)


class ServingSink:
    """The serving app's live index (under its lock) and, through it, the vector store."""

    def __init__(self, search: SearchService) -> None:
        self.search = search

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None:
        self.search.write_vectors(ids, vectors, attributes)

    def remove(self, ids: np.ndarray) -> None:
        self.search.remove_vectors(ids)


@dataclass(frozen=True)
class ViewTarget:
    embedder: Embedder  # the model whose index the vectors join
    sink: VectorSink


def serving_target(search: SearchService) -> ViewTarget:
    return ViewTarget(search.embedder.embedder, ServingSink(search))


def offline_target(workspace: Workspace, embedder: Embedder) -> ViewTarget:
    """The vector store of `embedder`'s model in `workspace`: `IndexNotFound` when that model has no
    catalog here (views would join nothing), `IndexMismatch` when the store is of another dimension."""
    manifest = embedder.manifest
    store = VectorStore.open(workspace.vectors_dir(manifest.model_id))
    if (store.model_id, store.dim) != (manifest.model_id, manifest.embed_dim):
        raise IndexMismatch(f"the vector store of {manifest.model_id} holds {store.dim}-d vectors of {store.model_id}")
    return ViewTarget(embedder, StoreSink(store))


@dataclass(frozen=True)
class ViewOutcome:
    """What became of one pair: `added`, or why not (`exists`, `not_positive`, `no_product`,
    `no_photo`, `bad_photo`, `full`)."""

    pair_id: int
    status: str
    view_id: int | None = None
    image_id: int | None = None
    replaced_view_id: int | None = None


def attributes_of(product: Product, vendor: str) -> ItemAttributes:
    """The filter attributes of a product's vectors, exactly as ingest writes them."""
    return ItemAttributes(float(product.price), product.category, vendor, product.in_stock)


def _is_accepted(session: Session, photo_sha256: str, product_id: int) -> bool:
    return (
        session.scalar(
            select(ConfirmedPair.id).where(
                ConfirmedPair.photo_sha256 == photo_sha256,
                ConfirmedPair.product_id == product_id,
                ConfirmedPair.label == ACCEPTED,
            )
        )
        is not None
    )


def _take_slot(session: Session, product_id: int, accepted: bool) -> tuple[int, CustomerView | None] | None:
    """A slot for a new view of `product_id` by the cap rule (module docstring), with the live view it
    replaces (None when the slot is free); None when the product is full of views that must stay."""
    holders = session.scalars(
        select(CustomerView).where(CustomerView.product_id == product_id, CustomerView.image_id.is_not(None))
    ).all()
    held = {view.slot: view for view in holders}
    free = [slot for slot in range(MAX_VIEWS_PER_PRODUCT) if slot not in held]
    if free:
        return free[0], None
    removed = sorted((v for v in holders if v.removed_at is not None), key=lambda v: (utc(v.removed_at), v.id))
    if removed:
        _release(session, removed[0])
        return removed[0].slot, None
    live = sorted(holders, key=lambda v: (utc(v.created_at), v.id))  # utc: rows read back are naive
    replaceable = [v for v in live if not _is_accepted(session, v.photo_sha256, v.product_id)]
    victim = replaceable[0] if replaceable else (live[0] if accepted else None)
    if victim is None:
        return None
    victim.removed_at = now()
    _release(session, victim)
    return victim.slot, victim


def _release(session: Session, view: CustomerView) -> None:
    """The row gives its vector id up (flushed now: the id is unique and the next view takes it)."""
    view.image_id = None
    session.flush()


def add_views(
    sessions: sessionmaker, target: ViewTarget, workspace: Workspace, pair_ids: Sequence[int], who: str
) -> list[ViewOutcome]:
    """Make each positive pair a customer view of its product (see the module docstring for the rules)."""
    outcomes: list[ViewOutcome] = []
    for start in range(0, len(pair_ids), BATCH):
        with _choosing_slots:
            outcomes.extend(_add_batch(sessions, target, workspace, list(pair_ids[start : start + BATCH]), who))
    return outcomes


def _add_batch(
    sessions: sessionmaker, target: ViewTarget, workspace: Workspace, pair_ids: list[int], who: str
) -> list[ViewOutcome]:
    outcomes: dict[int, ViewOutcome] = {}
    ready: list[tuple[ConfirmedPair, Product, str, np.ndarray]] = []
    seen: set[tuple[int, str]] = set()
    with sessions() as session:
        pairs = session.scalars(select(ConfirmedPair).where(ConfirmedPair.id.in_(pair_ids))).all()
        for pair in sorted(pairs, key=lambda p: pair_ids.index(p.id)):
            key = (pair.product_id, pair.photo_sha256)
            status = _blocked(session, pair, key in seen)
            if status is not None:
                outcomes[pair.id] = ViewOutcome(pair.id, status)
                continue
            row = session.execute(
                select(Product, Vendor.name).join(Vendor).where(Product.id == pair.product_id)
            ).one_or_none()
            photo = read_photo(workspace, pair.photo_sha256)
            if row is None or photo is None:
                outcomes[pair.id] = ViewOutcome(pair.id, "no_product" if row is None else "no_photo")
                continue
            try:
                pixels = load_query_pixels(photo, target.embedder, tuple(pair.crop) if pair.crop else None)
            except (ImageRejected, ValueError) as exc:
                log.warning("pair %s: the photo cannot be embedded (%s)", pair.id, exc)
                outcomes[pair.id] = ViewOutcome(pair.id, "bad_photo")
                continue
            seen.add(key)
            ready.append((pair, row[0], row[1], pixels))
        if ready:
            vectors = target.embedder.embed_pixels(np.stack([pixels for *_, pixels in ready]))
            ids, kept, attributes = [], [], []
            for (pair, product, vendor, _), vector in zip(ready, vectors, strict=True):
                taken = _take_slot(session, pair.product_id, _is_accepted(session, pair.photo_sha256, pair.product_id))
                if taken is None:
                    outcomes[pair.id] = ViewOutcome(pair.id, "full")
                    continue
                slot, replaced = taken
                view = CustomerView(
                    product_id=pair.product_id,
                    slot=slot,
                    image_id=view_image_id(pair.product_id, slot),
                    pair_id=pair.id,
                    photo_sha256=pair.photo_sha256,
                    crop=pair.crop,
                )
                session.add(view)
                session.flush()
                detail = {"view_id": view.id, "product_id": pair.product_id, "image_id": view.image_id}
                if replaced is not None:
                    audit.record(session, who, "customer_view.replaced", None, view_id=replaced.id, by=view.id)
                audit.record(session, who, "customer_view.added", pair.request_id, pair_id=pair.id, **detail)
                outcomes[pair.id] = ViewOutcome(
                    pair.id, "added", view.id, view.image_id, replaced.id if replaced is not None else None
                )
                ids.append(view.image_id)
                kept.append(vector)
                attributes.append(attributes_of(product, vendor))
            if ids:
                # A slot taken twice in this batch (its view replaced by a later one of the batch)
                # is written once, with the later view: one row per id per write.
                last = sorted({image: n for n, image in enumerate(ids)}.values())
                target.sink.write(
                    np.asarray([ids[n] for n in last], np.int64),
                    np.stack([kept[n] for n in last]),
                    [attributes[n] for n in last],
                )
        session.commit()
    return [outcomes[pid] for pid in pair_ids if pid in outcomes]


def _blocked(session: Session, pair: ConfirmedPair, repeated: bool) -> str | None:
    """Why `pair` cannot become a view before looking at its product and photo, or None."""
    if pair.label not in POSITIVE:
        return "not_positive"
    if repeated:
        return "exists"
    earlier = session.scalar(
        select(CustomerView.id).where(
            CustomerView.product_id == pair.product_id, CustomerView.photo_sha256 == pair.photo_sha256
        )
    )
    return "exists" if earlier is not None else None


def add_views_for_offers(
    sessions: sessionmaker, search: SearchService, workspace: Workspace, offer_ids: Sequence[int], user: User
) -> list[ViewOutcome]:
    """The serving app, after offers are sent: each offered product gets the request's photo as a view,
    in the live index at once. Never raises (the offers are sent; a view is a bonus)."""
    try:
        with sessions() as session:
            pair_ids = session.scalars(
                select(ConfirmedPair.id)
                .where(ConfirmedPair.offer_id.in_(list(offer_ids)), ConfirmedPair.label.in_(POSITIVE))
                .order_by(ConfirmedPair.id)
            ).all()
        return add_views(sessions, serving_target(search), workspace, list(pair_ids), actor(user))
    except Exception:
        log.exception("could not add customer views for offers %s", list(offer_ids))
        return []


def remove_view(
    sessions: sessionmaker, sink: VectorSink, view_id: int, user: User, request_id: int | None = None
) -> None:
    """Take a wrong view out of the index and mark it removed by `user` (audited on `request_id`, the
    request whose workbench showed it). It is never added again."""
    with sessions() as session:
        if request_id is not None:
            refuse_if_held_by_other(session, load_by_id(session, request_id), user, "remove a customer photo")
        view = session.get(CustomerView, view_id)
        if view is None:
            raise NotFound("There is no such customer view.", "Reload the workbench.")
        if view.removed_at is not None or view.image_id is None:
            raise Conflict("This customer view has already been removed.")
        image = view.image_id
        view.removed_at, view.removed_by_id = now(), user.id
        audit.record(
            session,
            actor(user),
            "customer_view.removed",
            request_id,
            view_id=view.id,
            product_id=view.product_id,
            image_id=image,
            pair_id=view.pair_id,
        )
        session.flush()
        sink.remove(np.asarray([image], np.int64))
        session.commit()


def active_views(session: Session, product_id: int | None = None) -> list[CustomerView]:
    """Live views (oldest first), of one product or all."""
    query = select(CustomerView).where(CustomerView.removed_at.is_(None), CustomerView.image_id.is_not(None))
    if product_id is not None:
        query = query.where(CustomerView.product_id == product_id)
    return list(session.scalars(query.order_by(CustomerView.id)))


def write_all_views(index: VectorSink, embedder: Embedder, sessions: sessionmaker, workspace: Workspace) -> int:
    """(Re)embed every live customer view with `embedder` and write it into `index`; returns how many.

    For a new index or model version (`vitrine learn`): `index` is anything with `write(ids,
    vectors, attributes)`, e.g. the new model's `CatalogIndex` or a `StoreSink` over its vector
    store; `embedder` must be that model's. Ids are the views' own, so running it again replaces,
    never duplicates. Views whose product or stored photo is gone are skipped. Attributes are
    refreshed from the products as they are now."""
    if getattr(index, "dim", embedder.manifest.embed_dim) != embedder.manifest.embed_dim:
        raise IndexMismatch("the index and the embedder have different dimensions")
    written = 0
    with sessions() as session:
        views = [(v.image_id, v.product_id, v.photo_sha256, v.crop) for v in active_views(session)]
    for start in range(0, len(views), BATCH):
        chunk = views[start : start + BATCH]
        with sessions() as session:
            products = {
                p.id: (p, vendor)
                for p, vendor in session.execute(
                    select(Product, Vendor.name).join(Vendor).where(Product.id.in_([v[1] for v in chunk]))
                )
            }
        ids, pixels, attributes = [], [], []
        for image, product_id, sha, crop in chunk:
            photo = read_photo(workspace, sha)
            if product_id not in products or photo is None:
                continue
            try:
                pixels.append(load_query_pixels(photo, embedder, tuple(crop) if crop else None))
            except (ImageRejected, ValueError) as exc:
                log.warning("view %s: the photo cannot be embedded (%s)", image, exc)
                continue
            ids.append(image)
            attributes.append(attributes_of(*products[product_id]))
        if ids:
            index.write(np.asarray(ids, np.int64), embedder.embed_pixels(np.stack(pixels)), attributes)
            written += len(ids)
    return written

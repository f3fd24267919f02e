"""`reembed`: a catalog moved to another model without its vendor files (`vitrine reembed --model NAME`).

Every product image the data folder keeps (its content-addressed copy under `images/`, written by
ingest) is embedded with the new model into that model's vector store, then the model's index is
published; so are other kinds of vectors a caller adds as sources (the `vitrine` command adds the
customer views, `workflow.view_reembed`: this package may not import `workflow`). The old model's
store and index are left as they are, so data folders keep serving with either model.

Per source (catalog images first, then customer views), in this order:

1. tombstone the new store's vectors of that kind that nothing in the database claims any more
   (products removed, views removed while another model was in use);
2. embed what the store lacks (everything with `force`), `batch` images at a time, each batch
   appended to the store as one segment (under the store's append lock, like every ingest write);
3. at the end, `publish_index`: the store compacted and the saved index brought up to date.

Nothing is written to the database, so a crash at any point leaves the store with some of the
vectors, and the next run embeds only what is still missing. An image whose file is missing or
cannot be decoded is reported (kind, ids, vendor, sku, reason) and the rest go on. A vector already
in the new store counts as current, as ingest treats it (`force` re-embeds everything). One reembed
per store at a time (`reembed.lock` in the store's folder).

Catalog images are re-embedded from the copies ingest kept: thumbnails whose longest side is
`vision.pipeline.THUMBNAIL_SIZE` (256 px). A model with a larger input (vitrine-lite2: 260 px) sees
them slightly upscaled; re-ingesting the vendor's file with `--model` embeds the originals. Measured
on the demo set (500 products, 200 customer photos), moved from `demo` to vitrine-lite2: photo recall@1
0.615 re-embedded against 0.645 ingested from the originals, recall@10 0.960 against 0.965.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from catalog.catalog_index import publish_index
from catalog.db import Product, ProductImage, Vendor
from catalog.ids import VIEW_FLAG
from catalog.workspace import Workspace
from catalog_ingest.ingest import BATCH_ROWS
from catalog_ingest.product_edits import StoreSink, hide_inactive
from index.file_lock import LockHeld, exclusive_lock
from index.filters import ItemAttributes
from index.vector_store import STORE_FILE, VectorStore
from vision.embedder import Embedder
from vision.pipeline import embed_sources

LOCK_FILE = "reembed.lock"
FAILURES_LISTED = 1000  # failures listed in the summary (all are counted, and grouped by reason)

#: (done, embedded, total): images handled so far (embedded or failed), of `total` to embed.
Progress = Callable[[int, int, int], None]
#: What a source's `embed` gives back: the vectors it made, their ids and attributes, and its failures
#: (dicts with image_id, product_id, vendor, sku and reason).
Embedded = tuple[np.ndarray, np.ndarray, list[ItemAttributes], list[dict]]


class ReembedError(Exception):
    """The re-embed cannot start; the message says why and what to do."""


class ReembedSource(Protocol):
    """One kind of vector in a model's store that the database can re-create with any model."""

    kind: str  # "catalog_image", "customer_view": the summary's key and each failure's `kind`

    def owns(self, ids: np.ndarray) -> np.ndarray:
        """Which of `ids` are of this kind (what this source may tombstone)."""
        ...

    def wanted(self) -> np.ndarray:
        """The ids of this kind that should have a vector, sorted."""
        ...

    def embed(self, ids: np.ndarray, embedder: Embedder) -> Embedded:
        """Embed these ids with `embedder`: every id ends up in the vectors or in the failures."""
        ...


#: Builds a source over a data folder and its database (how the command is given extra sources).
SourceFactory = Callable[[Workspace, sessionmaker], ReembedSource]


class CatalogImages:
    """The product images of the catalog (`product_images`), from the copies ingest stored."""

    kind = "catalog_image"

    def __init__(self, workspace: Workspace, sessions: sessionmaker) -> None:
        self.workspace, self.sessions = workspace, sessions

    def owns(self, ids: np.ndarray) -> np.ndarray:
        return (np.asarray(ids, np.int64) & VIEW_FLAG) == 0

    def wanted(self) -> np.ndarray:
        with self.sessions() as session:
            return np.sort(np.fromiter(session.scalars(select(ProductImage.id)), np.int64))

    def embed(self, ids: np.ndarray, embedder: Embedder) -> Embedded:
        with self.sessions() as session:
            rows = session.execute(
                select(
                    ProductImage.id,
                    ProductImage.sha256,
                    Product.id,
                    Product.sku,
                    Product.price,
                    Product.category,
                    Product.in_stock,
                    Vendor.name,
                )
                .join(Product, ProductImage.product_id == Product.id)
                .join(Vendor, Product.vendor_id == Vendor.id)
                .where(ProductImage.id.in_([int(i) for i in ids]))
                .order_by(ProductImage.id)
            ).all()
        failures: list[dict] = []
        loaded: list[tuple[tuple, bytes]] = []
        for row in rows:
            path = self.workspace.thumbnail_path(row[1])
            try:
                loaded.append((row, path.read_bytes()))
            except FileNotFoundError:
                failures.append(_failure(row, f"the stored image file is missing ({path})"))
            except OSError as exc:
                failures.append(_failure(row, f"the stored image file is unreadable ({exc})"))
        listed = {row[0] for row in rows}
        gone = [int(i) for i in ids if int(i) not in listed]
        failures += [
            _failure((i, "", None, "", 0, "", False, ""), "removed from the catalog during the run") for i in gone
        ]
        out_ids, vectors, attributes = [], [], []
        for (row, _), result in zip(loaded, embed_sources(embedder, (data for _, data in loaded)), strict=True):
            if result.error is not None:
                failures.append(_failure(row, str(result.error)))
                continue
            image, _sha, _product, _sku, price, category, in_stock, vendor = row
            out_ids.append(image)
            vectors.append(result.vector)
            attributes.append(ItemAttributes(float(price), category, vendor, in_stock))  # as ingest writes them
        dim = embedder.manifest.embed_dim
        stacked = np.stack(vectors) if vectors else np.empty((0, dim), np.float32)
        return np.asarray(out_ids, np.int64), stacked, attributes, failures


def _failure(row: tuple, reason: str) -> dict:
    """A catalog image that was not embedded: `row` as `CatalogImages.embed` selects it."""
    image, _sha, product, sku, *_, vendor = row
    return {"image_id": int(image), "product_id": product, "vendor": vendor, "sku": sku, "reason": reason}


@dataclass
class KindCounts:
    """One source's figures: ids wanted, already in the store, embedded, failed, tombstoned."""

    wanted: int = 0
    present: int = 0
    to_embed: int = 0
    embedded: int = 0
    failed: int = 0
    removed: int = 0

    def to_json(self) -> dict:
        return {
            "total": self.wanted,
            "embedded": self.embedded,
            "skipped": self.wanted - self.to_embed,
            "failed": self.failed,
            "removed": self.removed,
        }


@dataclass
class ReembedSummary:
    model: str
    model_id: str
    dim: int
    store: str
    force: bool
    kinds: dict[str, KindCounts] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)  # the first FAILURES_LISTED
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0
    index: dict = field(default_factory=dict)

    @property
    def embedded(self) -> int:
        return sum(k.embedded for k in self.kinds.values())

    @property
    def failed(self) -> int:
        return sum(k.failed for k in self.kinds.values())

    def add_failures(self, kind: str, failures: list[dict]) -> None:
        self.kinds[kind].failed += len(failures)
        self.failed_by_reason.update(f"{kind}: {_reason_kind(f['reason'])}" for f in failures)
        room = max(FAILURES_LISTED - len(self.failures), 0)
        self.failures.extend({"kind": kind, **f} for f in failures[:room])

    def to_json(self) -> dict:
        kinds = {kind: counts.to_json() for kind, counts in self.kinds.items()}
        return {
            "model": self.model,
            "model_id": self.model_id,
            "dim": self.dim,
            "store": self.store,
            "force": self.force,
            "images_total": sum(k["total"] for k in kinds.values()),
            "images_embedded": self.embedded,
            "images_skipped": sum(k["skipped"] for k in kinds.values()),
            "images_failed": self.failed,
            "vectors_removed": sum(k["removed"] for k in kinds.values()),
            **kinds,
            "failed_by_reason": dict(self.failed_by_reason.most_common()),
            "failures": self.failures,
            "failures_listed": len(self.failures),
            "duration_s": round(self.duration_s, 2),
            "images_per_s": round(self.embedded / self.duration_s, 2) if self.duration_s else 0.0,
            "index": self.index,
            "index_kind": self.index.get("index_type"),
        }


def _reason_kind(reason: str) -> str:
    """Group reasons: the text before any detail (a path, an exception's message)."""
    return reason.split(" (")[0][:80]


@dataclass
class Plan:
    """What a run would do now: per kind, the ids to tombstone and the ids to embed."""

    counts: dict[str, KindCounts]
    removals: dict[str, np.ndarray]
    todo: dict[str, np.ndarray]

    @property
    def to_embed(self) -> int:
        return sum(len(ids) for ids in self.todo.values())

    @property
    def to_remove(self) -> int:
        return sum(len(ids) for ids in self.removals.values())


class Reembedder:
    """Re-embed a data folder's catalog (and any extra sources) with `embedder`, into its model's store."""

    def __init__(
        self,
        workspace: Workspace,
        sessions: sessionmaker,
        embedder: Embedder,
        extra: Sequence[SourceFactory] = (),
        batch: int = BATCH_ROWS,
        force: bool = False,
    ) -> None:
        if batch < 1:
            raise ReembedError("--batch must be at least 1")
        self.workspace, self.embedder, self.batch, self.force = workspace, embedder, batch, force
        self.sessions = sessions
        self.sources: list[ReembedSource] = [
            CatalogImages(workspace, sessions),
            *(f(workspace, sessions) for f in extra),
        ]
        self.directory = workspace.vectors_dir(embedder.manifest.model_id)

    def _store(self) -> VectorStore:
        """The model's store, created when missing (raises `IndexMismatch` for one of another dimension)."""
        manifest = self.embedder.manifest
        return VectorStore(self.directory, manifest.model_id, manifest.embed_dim)

    def plan(self) -> Plan:
        """Compare the database with the store: nothing is written (a missing store is not created)."""
        live = self._store().live_ids() if (self.directory / STORE_FILE).is_file() else np.empty(0, np.int64)
        counts, removals, todo = {}, {}, {}
        for source in self.sources:
            wanted = source.wanted()
            mine = live[source.owns(live)]
            present = np.intersect1d(wanted, mine, assume_unique=True)
            removals[source.kind] = np.setdiff1d(mine, wanted, assume_unique=True)
            todo[source.kind] = wanted if self.force else np.setdiff1d(wanted, present, assume_unique=True)
            counts[source.kind] = KindCounts(wanted=len(wanted), present=len(present), to_embed=len(todo[source.kind]))
        if not counts["catalog_image"].wanted:
            raise ReembedError(
                f"there is no catalog in {self.workspace.home} to re-embed (no product images in its database); "
                "ingest one with `vitrine ingest CATALOG --vendor NAME --model NAME`"
            )
        return Plan(counts, removals, todo)

    def run(self, progress: Progress | None = None) -> ReembedSummary:
        """Tombstone, embed what is missing, publish the index (see the module docstring)."""
        manifest = self.embedder.manifest
        began = time.perf_counter()
        store = self._store()
        with _reembed_lock(store):
            plan = self.plan()  # under the lock: what another run did meanwhile is not done twice
            summary = ReembedSummary(
                model=manifest.name,
                model_id=manifest.model_id,
                dim=manifest.embed_dim,
                store=str(store.directory),
                force=self.force,
                kinds=plan.counts,
            )
            total, done = plan.to_embed, 0
            if progress:
                progress(0, 0, total)
            for source in self.sources:
                counts = summary.kinds[source.kind]
                removals = plan.removals[source.kind]
                store.delete(removals)
                counts.removed = len(removals)
                todo = plan.todo[source.kind]
                for start in range(0, len(todo), self.batch):
                    chunk = todo[start : start + self.batch]
                    ids, vectors, attributes, failures = source.embed(chunk, self.embedder)
                    if len(ids):
                        store.append(ids, vectors, attributes)  # one segment, under the append lock
                    counts.embedded += len(ids)
                    summary.add_failures(source.kind, failures)
                    done += len(chunk)
                    if progress:
                        progress(done, summary.embedded, total)
            # A product its vendor deactivated stays out of search under this model too (product_edits).
            hide_inactive(self.sessions, [StoreSink(store)], None)
            published = publish_index(self.workspace, manifest.model_id, manifest.embed_dim)
        summary.index = {key: published[key] for key in ("mode", "index_type", "count")}
        summary.duration_s = time.perf_counter() - began
        return summary


@contextlib.contextmanager
def _reembed_lock(store: VectorStore) -> Iterator[None]:
    """One reembed per store at a time; a second one is refused at once (ingests and the serving app
    are not held back: each of their writes, like each of ours, takes the store's append lock)."""
    path = store.directory / LOCK_FILE
    try:
        with exclusive_lock(path, wait=False):
            yield
    except LockHeld:
        raise ReembedError(f"another `vitrine reembed` is writing {store.directory} (it holds {path})") from None


__all__ = ["CatalogImages", "Plan", "ReembedError", "ReembedSource", "ReembedSummary", "Reembedder", "SourceFactory"]

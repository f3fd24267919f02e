"""`ingest_catalog`: one vendor file in; products, vectors and index entries out; every bad row reported.

Per batch of rows: validate → look up what the database already has → load image bytes
(concurrently: files, zip members, URLs; the next batch loads while this one embeds) → hash →
embed only new or changed images (decoding overlapped with inference) → commit (on a thread of its
own, one batch at a time, in order, while the next batch embeds): thumbnails to the image store,
new vectors to the vector store, then products to the database, then retire vectors no product
uses. Product and
image ids are deterministic, so a rerun after a crash upserts the same rows; vectors whose product
never reached the database are tombstoned when the next run starts with no other run in flight.

Runs of different vendors go side by side (threads of the web app's jobs, or processes): their ids
never overlap, segments are numbered under the store's append lock, and compaction and the publish
at the end are one at a time (index.vector_store explains the locks).

Memory follows the batch, not the catalog: no index is held during the run (the vendor's vectors,
for near-duplicates, wait in a scratch inverted file on disk); at the end the store is compacted and
the saved index brought up to date from it (`publish_index`: extended, or rebuilt streamed).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import defer, selectinload

from catalog.catalog_index import publish_index
from catalog.db import IngestJob, Product, ProductImage, Vendor, make_engine, session_factory
from catalog.ids import VIEW_FLAG, image_id, product_id, product_of_image
from catalog.leftovers import clean_leftovers, run_lock
from catalog.metrics import count_ingest
from catalog.workspace import Workspace
from catalog_ingest.errors import CatalogError, ImageUnavailable
from catalog_ingest.images import FetchPolicy, ImageResolver, UrlFetcher
from catalog_ingest.mapping import ColumnMapping
from catalog_ingest.memory import release_freed_memory
from catalog_ingest.near_duplicates import VendorVectors
from catalog_ingest.product_edits import StoreSink, hide_inactive
from catalog_ingest.readers import open_catalog
from catalog_ingest.validation import CatalogRow, Rejection, validate
from index.filters import ItemAttributes
from index.id_map import IdMap
from index.vector_store import VectorStore
from vision.embedder import Embedder
from vision.pipeline import THUMBNAIL_SIZE, embed_sources

BATCH_ROWS = 128
MAX_VENDOR_NAME = 200  # catalog.db.Vendor.name
NEAR_DUPLICATE_CANDIDATES = 8


@dataclass
class IngestOptions:
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    sync: bool = False
    near_duplicate_threshold: float = 0.97
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    batch_rows: int = BATCH_ROWS
    # Called with the summary so far after each batch and at the end (catalog_ingest.jobs writes a
    # job's live progress from it; raising here stops the run, as a shutdown does).
    on_batch: Callable[[IngestSummary], None] | None = None


@dataclass
class IngestSummary:
    vendor: str
    catalog: str
    model_id: str
    job_id: int = 0
    rows: int = 0
    accepted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    images_embedded: int = 0
    images_reused: int = 0
    duration_s: float = 0.0
    rejected: list[Rejection] = field(default_factory=list)
    duplicate_skus: list[dict] = field(default_factory=list)
    near_duplicates: list[dict] = field(default_factory=list)
    near_duplicates_count: int = 0
    index: dict = field(default_factory=dict)  # how the saved index was brought up to date

    def to_json(self) -> dict:
        rejected_rows = {(r.row, r.line, r.sku) for r in self.rejected}
        return {
            "job_id": self.job_id,
            "vendor": self.vendor,
            "catalog": self.catalog,
            "model_id": self.model_id,
            "rows": self.rows,
            "accepted": self.accepted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "rejected": len(rejected_rows),
            "rejected_by_reason": dict(Counter(f"{r.field}: {_reason_kind(r.reason)}" for r in self.rejected)),
            "duplicate_skus": self.duplicate_skus[:100],
            "duplicate_skus_count": len(self.duplicate_skus),
            "near_duplicates": self.near_duplicates[:100],
            "near_duplicates_count": self.near_duplicates_count,
            "images_embedded": self.images_embedded,
            "images_reused": self.images_reused,
            "duration_s": round(self.duration_s, 2),
            "rows_per_s": round(self.rows / self.duration_s, 2) if self.duration_s else 0.0,
            "images_per_s": round(self.images_embedded / self.duration_s, 2) if self.duration_s else 0.0,
            "index": self.index,
            "rejects": [r.to_json() for r in self.rejected],
        }


def _reason_kind(reason: str) -> str:
    """Group reasons for the summary: the text before any detail (a quoted value, a path...)."""
    for cut in (" (", ": ", " '", ' "'):
        reason = reason.split(cut)[0]
    return reason[:80]


@dataclass
class _Pending:
    """A valid row on its way through the batch."""

    row: CatalogRow
    product: int
    existing: Product | None
    images: list[tuple[int, str, bytes | None, str]] = field(default_factory=list)  # (position, ref, bytes, sha)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    failed: bool = False
    loads: list = field(default_factory=list)  # (position, ref, future of (bytes, sha256)) until finished


def ingest_catalog(
    catalog: Path,
    vendor: str,
    embedder: Embedder,
    workspace: Workspace,
    options: IngestOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    job_id: int | None = None,
) -> IngestSummary:
    """Ingest `catalog` for `vendor`. Raises `CatalogError` for whole-file problems, before any write.

    `job_id`: a queued upload's job (catalog_ingest.jobs) that this run carries out, instead of a new one."""
    options = options or IngestOptions()
    if not vendor.strip() or len(vendor) > MAX_VENDOR_NAME:  # PostgreSQL enforces the column's length
        raise CatalogError(f"A vendor name is 1-{MAX_VENDOR_NAME} characters (this one has {len(vendor)}).")
    began = time.perf_counter()
    opened = open_catalog(catalog)
    near: VendorVectors | None = None
    run = contextlib.ExitStack()  # this run's lock: a job whose lock is free belongs to a dead run
    try:
        options.mapping.check_headers(opened.headers)
        engine = make_engine(workspace.database_url)
        sessions = session_factory(engine)
        model_id, dim = embedder.manifest.model_id, embedder.manifest.embed_dim
        store = VectorStore(workspace.vectors_dir(model_id), model_id, dim)
        clean_leftovers(workspace, sessions)  # jobs and scratch files of runs killed before this one
        lock_name = run.enter_context(run_lock(workspace))
        # In flight until the end: vectors are written before their products, so orphans are judged
        # only by a run that starts alone (another vendor's run may be between its two writes).
        run.enter_context(store.run_in_flight(lambda: _reconcile(sessions, store)))
        fetcher = UrlFetcher(options.fetch)
        resolver = ImageResolver(opened.root, opened.zip_file, options.mapping.image_folder, fetcher)
        summary = IngestSummary(vendor=vendor, catalog=str(catalog), model_id=model_id)
        with sessions() as session:
            vendor_row = session.scalar(select(Vendor).where(Vendor.name == vendor))
            if vendor_row is None:
                vendor_row = Vendor(name=vendor)
                session.add(vendor_row)
            session.commit()
            vendor_id = vendor_row.id
            job = session.get(IngestJob, job_id) if job_id is not None else None
            if job is None:
                job = IngestJob(vendor_id=vendor_id)
                session.add(job)
            job.catalog, job.model_id, job.status = str(catalog), model_id, "running"
            job.summary = {"run_lock": lock_name}
            session.commit()
            job_id = summary.job_id = job.id
        near = (
            VendorVectors.scratch(store, vendor, workspace.home / "tmp")
            if options.near_duplicate_threshold < 1
            else None
        )
        runner = _BatchRunner(vendor, vendor_id, embedder, store, near, sessions, resolver, workspace, options, summary)
        seen = _SeenProducts()  # valid rows: what the run ingests
        listed = _SeenProducts()  # rejected rows' skus: what --sync must not remove either
        batch: list = []
        prepared: list[_Pending] | None = None
        with (
            ThreadPoolExecutor(max_workers=options.fetch.concurrency, thread_name_prefix="fetch") as loaders,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit") as committer,
        ):
            runner.loaders, runner.committer = loaders, committer
            for record in opened.records:
                summary.rows += 1
                if record.problem:
                    summary.rejected.append(Rejection(record.number, "", "row", record.problem, line=record.line))
                    continue
                values = options.mapping.apply(record.values)
                checked = validate(record.number or 0, values)
                if isinstance(checked, list):
                    summary.rejected.extend(checked)
                    sku = values.get("sku", "").strip()
                    if sku:  # still listed: --sync keeps the product it had (the row is only reported)
                        listed.add(product_id(vendor, sku), record.number or 0)
                    continue
                pid = product_id(vendor, checked.sku)
                kept_row = seen.get(pid)
                if kept_row is not None:
                    if len(summary.duplicate_skus) < 100:
                        summary.duplicate_skus.append({"sku": checked.sku, "row": checked.row, "kept_row": kept_row})
                    summary.rejected.append(
                        Rejection(checked.row, checked.sku, "sku", f"duplicate sku (kept row {kept_row})")
                    )
                    continue
                seen.add(pid, checked.row)
                batch.append((pid, checked))
                if len(batch) >= options.batch_rows:
                    # The next batch's images load while this one is embedded and committed.
                    ready = runner.prepare(batch)
                    if prepared is not None:
                        runner.finish(prepared)
                    prepared, batch = ready, []
                    if progress:
                        progress(summary.rows, summary.images_embedded)
                    if options.on_batch:
                        options.on_batch(summary)
            if batch:
                ready = runner.prepare(batch)
                if prepared is not None:
                    runner.finish(prepared)
                prepared = ready
            if prepared is not None:
                runner.finish(prepared)
            runner.wait_for_commit()
        if options.sync:
            summary.removed = runner.remove_absent(seen, listed)
        runner.near = None
        if near is not None:
            near.close()
            near = None
        release_freed_memory()
        published = publish_index(workspace, model_id, dim)
        summary.index = {key: published[key] for key in ("mode", "index_type", "count")}
        fetcher.close()
        summary.duration_s = time.perf_counter() - began
        if progress:
            progress(summary.rows, summary.images_embedded)
        with sessions() as session:
            job = session.get(IngestJob, job_id)
            job.status = "done"
            job.finished_at = datetime.now(UTC)
            job.summary = {k: v for k, v in summary.to_json().items() if k != "rejects"}
            session.commit()
        engine.dispose()
        done = job.summary
        count_ingest(
            {outcome: done[outcome] for outcome in ("accepted", "updated", "unchanged", "rejected")},
            {"embedded": summary.images_embedded, "reused": summary.images_reused},
        )
        return summary
    finally:
        if near is not None:
            near.close()  # the scratch cells on disk
        opened.close()
        run.close()


def _handed_over(photos: deque[bytes | None]) -> Iterator[bytes | None]:
    """Each photo's bytes leave the queue as they go to the decoder, so they are freed once decoded,
    not when the whole batch is: memory holds the photos in flight, not the batch's."""
    while photos:
        yield photos.popleft()


def _load_and_hash(resolver: ImageResolver, ref: str) -> tuple[bytes, str]:
    data = resolver.load(ref)
    return data, hashlib.sha256(data).hexdigest()


def _reconcile(sessions, store: VectorStore) -> None:  # type: ignore[no-untyped-def]
    """Tombstone vectors whose product never reached the database (a crash between the two writes).

    Customer views (`catalog.ids.is_customer_view`) are not catalog images and are left alone."""
    live = store.live_ids()
    live = live[(live & VIEW_FLAG) == 0]
    if not len(live):
        return
    with sessions() as session:
        known = np.fromiter(session.scalars(select(ProductImage.id)), np.int64)
    store.delete(np.setdiff1d(live, known))


class _SeenProducts(IdMap):
    """Product ids already read in this file, with their row: the index's sorted id map (16 bytes an
    id, not the ~150 of a dict of Python ints), merged every 4,096 ids so few stay Python ints."""

    def __init__(self) -> None:
        super().__init__(merge_at=4096)

    def get(self, pid: int) -> int | None:
        row = self.row_of(pid)
        return row if row >= 0 else None

    def add(self, pid: int, row: int) -> None:
        self.set(np.asarray([pid], np.int64), np.asarray([row], np.int64))


class _BatchRunner:
    def __init__(self, vendor, vendor_id, embedder, store, near, sessions, resolver, workspace, options, summary):  # type: ignore[no-untyped-def]
        self.vendor, self.vendor_id = vendor, vendor_id
        self.embedder: Embedder = embedder
        self.store: VectorStore = store
        self.near: VendorVectors | None = near
        self.sessions = sessions
        self.resolver: ImageResolver = resolver
        self.workspace: Workspace = workspace
        self.options: IngestOptions = options
        self.summary: IngestSummary = summary
        self.loaders: ThreadPoolExecutor | None = None
        self.committer: ThreadPoolExecutor | None = None
        self._committing: Future[None] | None = None
        self.vector_cache: dict[str, np.ndarray] = {}  # exact duplicate images embed once per run

    def prepare(self, batch: Sequence[tuple[int, CatalogRow]]) -> list[_Pending]:
        """Look up what the database has for these rows and start loading their images."""
        assert self.loaders is not None
        with self.sessions() as session:
            existing = {
                p.id: p
                for p in session.scalars(
                    select(Product)
                    .where(Product.id.in_([pid for pid, _ in batch]))
                    # `active` is the vendor's, not the file's: left unloaded, the merge at commit
                    # never writes back a value read before a deactivation made meanwhile.
                    .options(selectinload(Product.images), defer(Product.active))
                )
            }
        pending = [_Pending(row, pid, existing.get(pid)) for pid, row in batch]
        for item in pending:
            item.loads = [
                (pos, ref, self.loaders.submit(_load_and_hash, self.resolver, ref))
                for pos, ref in enumerate(item.row.images)
            ]
        return pending

    def finish(self, pending: list[_Pending]) -> None:
        """Wait for the images, embed what is new, commit the batch."""
        for item in pending:
            for position, ref, future in item.loads:
                try:
                    data, sha = future.result()
                    item.images.append((position, ref, data, sha))
                except ImageUnavailable as exc:
                    self._image_problem(item, position, str(exc))
            item.loads = []
        thumbnails = self._embed(pending)
        self.wait_for_commit()  # batches commit in order, one at a time
        assert self.committer is not None
        self._committing = self.committer.submit(self._commit, [p for p in pending if not p.failed], thumbnails)
        release_freed_memory()  # the batch's photos: resident memory follows the batch, not the run

    def wait_for_commit(self) -> None:
        """Wait for the batch being committed; its error, if any, is raised here."""
        if self._committing is not None:
            committing, self._committing = self._committing, None
            committing.result()

    def _image_problem(self, item: _Pending, position: int, reason: str) -> None:
        field_name = "image" if position == 0 else "images"
        self.summary.rejected.append(Rejection(item.row.row, item.row.sku, field_name, reason))
        if position == 0:
            item.failed = True

    def _embed(self, pending: list[_Pending]) -> list[tuple[str, bytes]]:
        """Give every loaded image a vector: kept from before if its bytes are unchanged, shared if the
        same bytes appear elsewhere in the run, otherwise embedded (each distinct image once).
        Returns the new thumbnails (sha256, JPEG) for the commit thread to store: file writes there
        do not hold up the next batch's inference."""
        thumbnails: list[tuple[str, bytes]] = []
        fresh: list[tuple[_Pending, int, bytes | None, str]] = []
        kept: list[tuple[_Pending, int, ProductImage, bytes | None, str]] = []
        for item in pending:
            if item.failed:
                continue
            known = {img.position: img for img in item.existing.images} if item.existing else {}
            for position, _ref, data, sha in item.images:
                old = known.get(position)
                if old is not None and old.sha256 == sha:
                    kept.append((item, position, old, data, sha))
                else:
                    fresh.append((item, position, data, sha))
        if kept:  # unchanged bytes: the stored vector, read back from the store (the source of truth)
            found, vectors = self.store.vectors_of(np.asarray([old.id for _, _, old, _, _ in kept], np.int64))
            for (item, position, old, data, sha), ok, vector in zip(kept, found, vectors, strict=True):
                if ok:
                    item.vectors[position], item.sizes[position] = vector, (old.width, old.height)
                else:
                    fresh.append((item, position, data, sha))
        todo: dict[str, list[tuple[_Pending, int]]] = {}
        photos: deque[bytes | None] = deque()
        for item, position, data, sha in fresh:
            if sha in self.vector_cache:
                item.vectors[position], item.sizes[position] = self.vector_cache[sha]
                self.summary.images_reused += 1
                continue
            if sha in todo:
                self.summary.images_reused += 1
            else:
                photos.append(data)
            todo.setdefault(sha, []).append((item, position))
        del fresh, kept
        for item in pending:  # from here on the commit needs only the hashes, not the bytes
            item.images = [(position, ref, None, sha) for position, ref, _data, sha in item.images]
        shas = list(todo)
        results = embed_sources(self.embedder, _handed_over(photos), thumbnail_size=THUMBNAIL_SIZE)
        for sha, result in zip(shas, results, strict=True):
            users = todo[sha]
            if result.error is not None:
                for item, position in users:
                    self._image_problem(item, position, str(result.error))
                continue
            assert result.vector is not None and result.size is not None
            for item, position in users:
                item.vectors[position], item.sizes[position] = result.vector, result.size
            self.vector_cache[sha] = (result.vector, result.size)
            if result.thumbnail:
                thumbnails.append((sha, result.thumbnail))
            self.summary.images_embedded += 1
        if len(self.vector_cache) > 2_000:
            self.vector_cache.clear()  # bounded memory: the cache only saves work within nearby batches
        return thumbnails

    def _commit(self, items: list[_Pending], thumbnails: list[tuple[str, bytes]]) -> None:
        for sha, jpeg in thumbnails:  # before the products that show them
            self.workspace.store_thumbnail(sha, jpeg)
        write_ids, write_vectors, write_attributes, dead = [], [], [], []
        new_embeddings: list[tuple[_Pending, int, np.ndarray]] = []
        replaced: list[int] = []  # ids whose earlier vector gives way to a new one
        with self.sessions() as session:
            for item in items:
                row = item.row
                images = [(pos, ref, sha) for pos, ref, _data, sha in item.images if pos in item.vectors]
                state = _image_state(images)
                old_state = (
                    _image_state([(i.position, i.source, i.sha256) for i in item.existing.images])
                    if item.existing
                    else None
                )
                if item.existing is not None and item.existing.row_hash == row.row_hash and old_state == state:
                    self.summary.unchanged += 1
                    continue
                attributes = ItemAttributes(float(row.price), row.category, self.vendor, row.in_stock)
                old_ids = {i.id for i in item.existing.images} if item.existing else set()
                new_ids = set()
                for pos, _ref, sha in images:
                    iid = image_id(item.product, pos)
                    new_ids.add(iid)
                    write_ids.append(iid)
                    write_vectors.append(item.vectors[pos])
                    write_attributes.append(attributes)
                    if item.existing is None or not any(
                        i.position == pos and i.sha256 == sha for i in item.existing.images
                    ):
                        new_embeddings.append((item, iid, item.vectors[pos]))
                        if iid in old_ids:
                            replaced.append(iid)
                dead.extend(old_ids - new_ids)
                product = item.existing or Product(id=item.product, vendor_id=self.vendor_id, sku=row.sku)
                _fill(product, row)
                product.images = [
                    ProductImage(
                        id=image_id(item.product, pos),
                        position=pos,
                        source=ref,
                        sha256=sha,
                        width=item.sizes[pos][0],
                        height=item.sizes[pos][1],
                    )
                    for pos, ref, sha in images
                ]
                if item.existing is None:
                    session.add(product)  # new: no lookups (merge would select the product and each image)
                else:
                    session.merge(product)
                if item.existing is None:
                    self.summary.accepted += 1
                else:
                    self.summary.updated += 1
            # New vectors first (the store is the source of truth), then the database, then the removal
            # of vectors no product uses any more: a crash anywhere leaves at worst vectors without
            # products, which the next run tombstones; never a product without its vectors.
            if write_ids:
                self.store.append(np.asarray(write_ids, np.int64), np.stack(write_vectors), write_attributes)
            session.commit()
        dead_ids = np.asarray(sorted(dead), np.int64)
        self.store.delete(dead_ids)
        # A product its vendor deactivated stays out of search when its row changes (product_edits).
        hide_inactive(self.sessions, [StoreSink(self.store)], [i.product for i in items if i.existing is not None])
        self._report_near_duplicates(new_embeddings, np.concatenate([dead_ids, np.asarray(replaced, np.int64)]))

    def _report_near_duplicates(self, embedded: list[tuple[_Pending, int, np.ndarray]], gone: np.ndarray) -> None:
        """Report a new image whose nearest other product of the same vendor is above the threshold
        (the vendor's vectors, this batch's included, so pairs within a batch count too). `gone`: ids
        whose earlier vectors no longer count (removed, or replaced by this batch's)."""
        near = self.near
        if near is None:
            return
        near.remove(gone)
        if not embedded:
            return
        queries = np.stack([v for *_, v in embedded])
        near.add(np.asarray([iid for _, iid, _ in embedded], np.int64), queries)
        hits = near.search(queries, NEAR_DUPLICATE_CANDIDATES)
        for q, (item, _iid, _v) in enumerate(embedded):
            for other, score in hits[q]:
                if score < self.options.near_duplicate_threshold:
                    break
                if product_of_image(other) == item.product:
                    continue
                self.summary.near_duplicates_count += 1
                if len(self.summary.near_duplicates) < 100:  # count them all, keep examples
                    self.summary.near_duplicates.append(
                        {
                            "sku": item.row.sku,
                            "row": item.row.row,
                            "similar_product_id": product_of_image(other),
                            "cosine": round(score, 4),
                        }
                    )
                break

    def remove_absent(self, present: _SeenProducts, listed: _SeenProducts) -> int:
        """--sync: remove this vendor's products that the file no longer lists. A product whose row
        is in the file but was rejected this time (a price typo, say) stays as it was."""
        with self.sessions() as session:
            mine = np.fromiter(session.scalars(select(Product.id).where(Product.vendor_id == self.vendor_id)), np.int64)
        absent = mine[~present.contains(mine) & ~listed.contains(mine)]
        ids: list[int] = []
        for start in range(0, len(absent), 500):  # a session per chunk: bounded identity map
            with self.sessions() as session:
                gone = session.scalars(
                    select(Product)
                    .where(Product.id.in_(absent[start : start + 500].tolist()))
                    .options(selectinload(Product.images))
                ).all()
                ids.extend(i.id for p in gone for i in p.images)
                for product in gone:
                    session.delete(product)
                session.commit()
        self.store.delete(np.asarray(ids, np.int64))  # after the database: a crash leaves only orphan vectors
        return len(absent)


def _image_state(images: list[tuple[int, str, str]]) -> list[tuple[int, str]]:
    return sorted((pos, sha) for pos, _ref, sha in images)


def _fill(product: Product, row: CatalogRow) -> None:
    product.title = row.title
    product.price = Decimal(row.price)
    product.currency = row.currency
    product.category = row.category
    product.brand = row.brand
    product.color = row.color
    product.in_stock = row.in_stock
    product.url = row.url
    product.description = row.description
    product.row_hash = row.row_hash


def load_mapping(path: Path | None) -> ColumnMapping:
    return ColumnMapping.load(path) if path else ColumnMapping()


__all__ = ["CatalogError", "IngestOptions", "IngestSummary", "ingest_catalog", "load_mapping"]

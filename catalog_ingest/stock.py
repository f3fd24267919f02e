"""Stock per store in: a vendor's `store,sku,quantity` file or API body, as a snapshot or a delta.

A vendor's back office sends this every few minutes, so it must be quick on a big vendor and never
hold the whole file in memory: rows are read as a stream and written in batches with one bulk
upsert each (one multi-row `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, a statement SQLite 3.35+
and PostgreSQL both read, so the same code runs on both); store codes are read once, SKUs resolved
per batch with one query.

Modes:
- `delta`: the listed rows set those quantities; nothing else changes.
- `snapshot`: the file is the whole truth *for the stores it names*: their rows not in the file are
  deleted (no row means quantity 0). Stores the file does not name keep their stock, so a chain can
  send one file per store or per region without wiping the others; to empty a store, list it with
  quantity 0 rows or send a delta.

Every row the run writes gets the run's own timestamp in `updated_at`. That one marker gives three
things without keeping millions of keys in Python: a row listed twice (even thousands of rows
apart) is seen by the upsert itself (the second write finds the marker and is refused, so the first
wins and the second is reported as a duplicate); the snapshot's leftovers are the named stores' rows
written before the run began (older than the marker: a newer run's rows, sent meanwhile, are kept);
and a crash half-way leaves only fully written rows (rerun the file).

Bad rows (unknown store, unknown SKU, a quantity that is not a whole number >= 0, a duplicate) are
reported with row number and reason, like catalog rejects; the good rows are applied. Each
committed chunk raises the vendor's stock version, so nearby search reloads its map.

One import per vendor at a time (`one_import_per_vendor`, an flock in the data folder, so across
processes): two at once would interleave their chunks, an older file's rows landing after a newer
one's, and on PostgreSQL their upserts of the same rows may deadlock.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from catalog.db import Product, Store, StoreStock
from catalog.private_files import private_folder
from catalog.workspace import Workspace
from catalog_ingest.csv_rows import RowProblem, csv_records, text_lines
from catalog_ingest.errors import CatalogError
from catalog_ingest.stores import bump_stock_version
from index.file_lock import LockHeld, exclusive_lock

StockMode = Literal["snapshot", "delta"]
STOCK_COLUMNS: tuple[str, ...] = ("store", "sku", "quantity")
MAX_QUANTITY = 2**31 - 1
#: Rows written by one upsert statement (and SKUs resolved by one query): 4 values a row stay far
#: below SQLite's 32,766 and PostgreSQL's 65,535 bound values per statement.
BATCH_ROWS = 2000
#: Rows between commits: short write transactions, so a serving process is never kept waiting long.
COMMIT_ROWS = 50_000
#: Rejects kept in the result (the API's answer); every reject still goes to `on_reject` and the counts.
KEPT_REJECTS = 1000


class StockImportBusy(RuntimeError):
    """Another import of the vendor's stock is running, and the caller chose not to wait for it."""


@contextlib.contextmanager
def one_import_per_vendor(workspace: Workspace, vendor_id: int, wait: bool = False) -> Iterator[None]:
    """Hold the vendor's stock-import lock for the block (see the module's note). Without `wait`,
    `StockImportBusy` at once when another import holds it: a web request or an API call is told to
    send again shortly rather than kept waiting for a million-row file."""
    path = private_folder(workspace.home / "locks") / f"stock-{int(vendor_id)}.lock"
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(path, wait=wait))
        except LockHeld:
            raise StockImportBusy(
                "Another stock import of your stores is running; send this file again when it has finished."
            ) from None
        yield


@dataclass(frozen=True)
class StockReject:
    """One row not applied: its data row number (the first row under the header is 1), its line in
    the file, the store code and SKU as given, and why."""

    row: int
    line: int
    store: str
    sku: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StockImport:
    mode: StockMode
    rows: int = 0
    applied: int = 0
    rejected: int = 0
    removed: int = 0
    stores: int = 0
    duration_s: float = 0.0
    rejects: list[StockReject] = field(default_factory=list)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.duration_s if self.duration_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rows": self.rows,
            "applied": self.applied,
            "rejected": self.rejected,
            "removed": self.removed,
            "stores": self.stores,
            "duration_s": round(self.duration_s, 3),
            "rows_per_s": round(self.rows_per_s, 1),
            "rejected_by_reason": dict(self.rejected_by_reason.most_common()),
            "rejects": [r.to_json() for r in self.rejects],
            "rejects_truncated": self.rejected > len(self.rejects),
        }


def _quantity(text: str) -> int | str:
    """The quantity, or why it cannot be one."""
    raw = text.strip()
    if not raw:
        return "the quantity is empty"
    try:
        number = int(raw)
    except ValueError:
        return f"the quantity {raw[:40]!r} is not a whole number"
    if number < 0:
        return f"the quantity may not be negative ({number})"
    if number > MAX_QUANTITY:
        return f"the quantity {number} is too large"
    return number


class _Run:
    """One import's state: the vendor's stores, the marker, the pending batch and the counts."""

    def __init__(
        self,
        session: Session,
        vendor_id: int,
        mode: StockMode,
        on_reject: Callable[[StockReject], None] | None,
    ) -> None:
        self.session = session
        self.vendor_id = vendor_id
        self.result = StockImport(mode=mode)
        self.on_reject = on_reject
        self.marker = datetime.now(UTC)
        self.stores = {
            code: store_id
            for code, store_id in session.execute(select(Store.code, Store.id).where(Store.vendor_id == vendor_id))
        }
        self.named: set[int] = set()
        self.pending: dict[tuple[int, str], tuple[int, int, str, str, int]] = {}
        self.uncommitted = 0
        # The upsert as plain SQL that SQLite (3.35+) and PostgreSQL both read, run through the
        # driver with positional values: SQLAlchemy's per-value processing cost more than the
        # database's own work at millions of rows. The marker is bound as SQLAlchemy stores it.
        dialect = session.get_bind().dialect
        processor = StoreStock.__table__.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.marker_value = processor(self.marker) if processor else self.marker
        self.placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        self._upserts: dict[int, str] = {}

    def _upsert_sql(self, rows: int) -> str:
        if rows not in self._upserts:
            mark = self.placeholder
            values = ",".join([f"({mark},{mark},{mark},{mark})"] * rows)
            self._upserts[rows] = (
                f"INSERT INTO store_stock (store_id, product_id, quantity, updated_at) VALUES {values} "
                "ON CONFLICT (store_id, product_id) DO UPDATE SET quantity = excluded.quantity, "
                f"updated_at = excluded.updated_at WHERE store_stock.updated_at <> {mark} "
                "RETURNING store_id, product_id"
            )
        return self._upserts[rows]

    def reject(self, row: int, line: int, store: str, sku: str, reason: str, kind: str) -> None:
        item = StockReject(row, line, store, sku, reason)
        self.result.rejected += 1
        self.result.rejected_by_reason[kind] += 1
        if len(self.result.rejects) < KEPT_REJECTS:
            self.result.rejects.append(item)
        if self.on_reject is not None:
            self.on_reject(item)

    def add(self, row: int, line: int, values: dict[str, str], problem: RowProblem | None = None) -> None:
        store, sku = values.get("store", "").strip(), values.get("sku", "").strip()
        if problem is not None:
            self.reject(row, line, store, sku, problem.reason, problem.kind)
            store_id = self.stores.get(store)
            if store_id is not None and sku:
                self._keep(store_id, sku)
            return
        if not store:
            self.reject(row, line, store, sku, "the store is empty", "no store")
            return
        store_id = self.stores.get(store)
        if store_id is None:
            self.reject(
                row, line, store, sku, f"no store with the code {store[:64]!r} (register it first)", "unknown store"
            )
            return
        if not sku:
            self.reject(row, line, store, sku, "the sku is empty", "no sku")
            return
        quantity = _quantity(values.get("quantity", ""))
        if isinstance(quantity, str):
            self.reject(row, line, store, sku, quantity, "bad quantity")
            self._keep(store_id, sku)
            return
        # Named by a row that is applied, not by refused ones: a file whose rows for a store are all
        # refused must not empty that store.
        self.named.add(store_id)
        if (store_id, sku) in self.pending:
            first = self.pending[(store_id, sku)][0]
            self.reject(row, line, store, sku, f"the same store and sku are on row {first}", "duplicate row")
            return
        self.pending[(store_id, sku)] = (row, line, store, sku, quantity)
        if len(self.pending) >= BATCH_ROWS:
            self.flush()

    def _keep(self, store_id: int, sku: str) -> None:
        """A refused row leaves that store's stock of the product as it was: stamped with this run's
        marker, a snapshot does not delete it as a leftover."""
        if self.result.mode != "snapshot":
            return
        product = select(Product.id).where(Product.vendor_id == self.vendor_id, Product.sku == sku).scalar_subquery()
        self.session.execute(
            update(StoreStock)
            .where(StoreStock.store_id == store_id, StoreStock.product_id == product)
            .values(updated_at=self.marker)
            .execution_options(synchronize_session=False)
        )

    def flush(self) -> None:
        if not self.pending:
            return
        skus = {sku for _, sku in self.pending}
        products = {
            sku: product_id
            for sku, product_id in self.session.execute(
                select(Product.sku, Product.id).where(Product.vendor_id == self.vendor_id, Product.sku.in_(skus))
            )
        }
        keys: list[tuple[int, int, str]] = []
        flat: list[Any] = []
        for (store_id, sku), (row, line, store, _, quantity) in self.pending.items():
            product_id = products.get(sku)
            if product_id is None:
                self.reject(
                    row, line, store, sku, f"no product with the sku {sku[:128]!r} in your catalog", "unknown sku"
                )
                continue
            keys.append((store_id, product_id, sku))
            flat.extend((store_id, product_id, quantity, self.marker_value))
        if keys:
            flat.append(self.marker_value)
            cursor = self.session.connection().exec_driver_sql(self._upsert_sql(len(keys)), tuple(flat))
            written = {(row[0], row[1]) for row in cursor.fetchall()}
            for store_id, product_id, sku in keys:
                if (store_id, product_id) not in written:
                    row, line, store, _, _ = self.pending[(store_id, sku)]
                    self.reject(row, line, store, sku, "the same store and sku are on an earlier row", "duplicate row")
            self.result.applied += len(written)
            self.uncommitted += len(written)
        self.pending.clear()
        if self.uncommitted >= COMMIT_ROWS:
            self.commit()

    def commit(self) -> None:
        if self.uncommitted:
            bump_stock_version(self.session, self.vendor_id)
        self.session.commit()
        self.uncommitted = 0

    def finish(self) -> None:
        self.flush()
        if self.result.mode == "snapshot" and self.named:
            table = StoreStock.__table__
            named = sorted(self.named)
            for start in range(0, len(named), 500):
                gone = self.session.connection().execute(
                    delete(table).where(
                        table.c.store_id.in_(named[start : start + 500]), table.c.updated_at < self.marker
                    )
                )
                self.result.removed += gone.rowcount or 0
            self.uncommitted += self.result.removed
        self.result.stores = len(self.named)
        self.commit()


def import_stock(
    session: Session,
    vendor_id: int,
    source: Path | bytes | str | IO[bytes],
    mode: StockMode = "snapshot",
    progress: Callable[[int], None] | None = None,
    on_reject: Callable[[StockReject], None] | None = None,
) -> StockImport:
    """Apply a `store,sku,quantity` CSV (comma, semicolon or tab) to the vendor's stores' stock; see
    the module's docstring for the modes. A file without those columns is refused whole
    (CatalogError) before anything is written. Commits (in chunks)."""
    if mode not in ("snapshot", "delta"):
        raise CatalogError(f"The mode must be snapshot or delta, not {mode!r}.")
    started = time.perf_counter()
    run = _Run(session, vendor_id, mode, on_reject)
    try:
        for row, line, values, problem in csv_records(text_lines(source), STOCK_COLUMNS, STOCK_COLUMNS):
            run.result.rows = row
            run.add(row, line, values, problem)
            if progress is not None and row % BATCH_ROWS == 0:
                progress(row)
        run.finish()
    except BaseException:
        session.rollback()
        raise
    if progress is not None:
        progress(run.result.rows)
    run.result.duration_s = time.perf_counter() - started
    return run.result


def store_stock_page(session: Session, store_id: int, page: int = 1, per_page: int = 50, q: str = "") -> dict[str, Any]:
    """One page of a store's stock by SKU (`q` searches SKU and title), with the total."""
    query = (
        select(Product.sku, Product.title, StoreStock.quantity, StoreStock.updated_at)
        .join(Product, Product.id == StoreStock.product_id)
        .where(StoreStock.store_id == store_id)
    )
    if q.strip():
        needle = f"%{q.strip().lower()}%"
        query = query.where(func.lower(Product.sku).like(needle) | func.lower(Product.title).like(needle))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = session.execute(query.order_by(Product.sku).offset((page - 1) * per_page).limit(per_page)).all()
    return {
        "items": [{"sku": r.sku, "title": r.title, "quantity": r.quantity, "updated_at": r.updated_at} for r in rows],
        "total": total,
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "q": q,
    }

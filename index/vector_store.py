"""The Parquet vector store: the source of truth from which any index can be rebuilt.

Append-only segments (`segment-00000001.parquet`, ...), each written to a temporary name,
fsynced and renamed, so a crash never leaves half a segment. A row is an upsert (id, model id,
vector, filter attributes) or a tombstone (`deleted`); the latest row of an id wins.

Compaction merges segments into one file named after the range it covers
(`segment-00000390-from-00000001.parquet`): the latest row of each id, tombstones dropped when the
range starts at the first segment (nothing older could resurrect). The merged file is renamed into
place before the files it covers are deleted, and readers ignore any file whose range another file
covers, so a crash at any moment leaves either the old files or the merged one in charge, never
both counted and never neither. Temporary files (dot-prefixed) are ignored and swept.

Where each id's latest row lives is cached per process (ids and flags of every file, read once;
appends from this process are added without rereading), so counting, listing live ids or fetching
vectors by id does not reread every segment each time.

Several writers may share a store (ingests of different vendors in threads of the web app or in
separate `vitrine ingest` processes, a serving app adding customer views). Three flocks keep them
apart (index/file_lock.py; they work between threads as between processes, and die with their
process): the append lock (the folder itself) while a segment is numbered, written and renamed;
`maintenance.lock`, one compaction or publish of the saved index at a time (a compaction's temporary
file is never swept by another's, two merges never delete each other's inputs, and a publish reads
the store `as_of` the segment it records while appends go on). Runs that write vectors before the
database rows that own them register in `runs.lock` (`run_in_flight`): vectors without a product
are judged leftovers of a crash only by a run that starts alone, never while another run may still
be about to commit its rows. Readers retry when a concurrent compaction removes a file between
listing and reading it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index.durable import fsync_path, write_atomically
from index.errors import IndexMismatch, IndexNotFound
from index.file_lock import exclusive_lock, in_flight
from index.filters import ItemAttributes
from index.id_map import IdMap

STORE_FILE = "store.json"
#: Vector bytes per Parquet row group in merged files: what a scan or a lookup by id decodes at a time.
ROW_GROUP_BYTES = 2**20
#: Columns worth dictionary encoding (few distinct values). Not the vectors: Parquet's dictionary
#: encoder tries every float before giving up, and its table took 24 MB to write one 8192-row group.
DICTIONARY_COLUMNS = ["model_id", "category", "vendor"]
_NAME = re.compile(r"segment-(\d{8})(?:-from-(\d{8}))?\.parquet")
MAINTENANCE_LOCK = "maintenance.lock"
RUNS_LOCK = "runs.lock"
#: How often a read starts over when a concurrent compaction removed a file it had listed.
READ_RETRIES = 8


@dataclass(frozen=True)
class VectorBatch:
    ids: np.ndarray
    vectors: np.ndarray
    attributes: list[ItemAttributes]


@dataclass(frozen=True)
class Segment:
    """One store file and the range of append numbers it covers (first == last for a plain segment)."""

    path: Path
    first: int
    last: int

    @property
    def merged(self) -> bool:
        return "-from-" in self.path.name

    @property
    def drops_tombstones(self) -> bool:
        """A merge from the first segment keeps no tombstones: nothing older remains to hide."""
        return self.merged and self.first == 1

    def covers(self, other: Segment) -> bool:
        if self.path == other.path or not (self.first <= other.first and other.last <= self.last):
            return False
        return (self.first, self.last) != (other.first, other.last) or (self.merged and not other.merged)


@dataclass(frozen=True)
class _Latest:
    """Sorted ids with the file (position in the segment list) and row of their latest row."""

    ids: np.ndarray
    file: np.ndarray
    row: np.ndarray
    deleted: np.ndarray
    lookup: IdMap  # id → position in these arrays (over `ids` itself: no copy)

    @classmethod
    def of(cls, ids: np.ndarray, file: np.ndarray, row: np.ndarray, deleted: np.ndarray) -> _Latest:
        return cls(ids, file, row, deleted, IdMap.positions(ids))

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Position of each id's latest row in these arrays, -1 where the id has no live row."""
        where = self.lookup.rows_of(ids)
        found = np.flatnonzero(where >= 0)
        where[found[self.deleted[where[found]]]] = -1
        return where


class VectorStore:
    """Vectors of one model; mixing in another model's vectors is refused."""

    def __init__(self, directory: Path, model_id: str, dim: int) -> None:
        self.directory = Path(directory)
        self.model_id = model_id
        self.dim = dim
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self.directory / STORE_FILE
        if not meta_path.is_file():
            with append_lock(self.directory):  # two first writers at once: one creates, the other reads
                if not meta_path.is_file():
                    meta = {"model_id": model_id, "dim": dim, "format_version": 1}
                    write_atomically(meta_path, json.dumps(meta).encode())
        meta = json.loads(meta_path.read_text())
        if (meta["model_id"], meta["dim"]) != (model_id, dim):
            raise IndexMismatch(
                f"The vector store in {self.directory} holds model {meta['model_id']!r} ({meta['dim']}-d), "
                f"not {model_id!r} ({dim}-d); use another store or re-embed."
            )
        self._flags: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # file name → (ids, deleted), per row
        self._latest: tuple[tuple[str, ...], _Latest] | None = None
        self._upto: int | None = None  # a view `as_of` this segment (later appends left out)
        self._maintaining = False  # this object holds the maintenance lock (`maintenance`)

    @classmethod
    def open(cls, directory: Path) -> VectorStore:
        meta_path = Path(directory) / STORE_FILE
        if not meta_path.is_file():
            raise IndexNotFound(f"No vector store in {directory} (no {STORE_FILE}).")
        meta = json.loads(meta_path.read_text())
        return cls(Path(directory), meta["model_id"], int(meta["dim"]))

    # ---- writing -------------------------------------------------------------------------------------

    def append(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes] | None = None
    ) -> None:
        """Upsert rows: the newest row of an id is the one that counts."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise IndexMismatch(f"expected {len(ids)} vectors of dimension {self.dim}, got {vectors.shape}")
        attributes = list(attributes) if attributes is not None else [ItemAttributes()] * len(ids)
        self._write_segment(ids, vectors, attributes, deleted=False)

    def delete(self, ids: Sequence[int] | np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids):
            self._write_segment(ids, np.zeros((len(ids), self.dim), np.float32), [ItemAttributes()] * len(ids), True)

    # ---- the files -----------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """The files in charge, oldest first (files another covers, e.g. after a crash mid-compaction,
        are left out)."""
        return [s.path for s in self.segment_ranges()]

    def segment_ranges(self) -> list[Segment]:
        found = []
        for path in self.directory.glob("segment-*.parquet"):
            match = _NAME.fullmatch(path.name)
            if match:
                last = int(match.group(1))
                found.append(Segment(path, int(match.group(2) or last), last))
        merged = [s for s in found if s.merged]  # only a merged file covers others: few of them
        in_charge = [s for s in found if not any(m.covers(s) for m in merged)]
        if self._upto is not None:
            in_charge = [s for s in in_charge if s.last <= self._upto]
        return sorted(in_charge, key=lambda s: s.last)

    def as_of(self, segment: int) -> VectorStore:
        """A read-only view of the store as it stood at `segment`: what a publish streams into the
        saved index while other writers append (it counts the rows first, then writes exactly that many).
        Consistent while the caller holds `maintenance()` (no compaction can merge past `segment`)."""
        view = copy.copy(self)
        view._upto, view._latest, view._flags = segment, None, dict(self._flags)  # its own cache
        return view

    @property
    def last_segment(self) -> int:
        """Number of the newest segment (0 when empty): an index records it to catch up later."""
        segments = self.segment_ranges()
        return segments[-1].last if segments else 0

    def replayable_since(self, segment: int) -> bool:
        """Whether replaying `changes_since(segment)` brings an index that covered `segment` up to date:
        not when a merge that dropped tombstones spans it (deletions in that range are gone)."""
        return not any(s.drops_tombstones and s.first <= segment < s.last for s in self.segment_ranges())

    # ---- reading -------------------------------------------------------------------------------------

    def changes_since(self, segment: int) -> Iterator[tuple[VectorBatch, np.ndarray]]:
        """Every row written after `segment`, in order, with its deleted flag: what an index replays.

        A merged file that spans `segment` is replayed whole (it holds the latest row of each id);
        see `replayable_since`."""
        for opened in self._open_files([s for s in self.segment_ranges() if s.last > segment]):
            part = opened.parquet()
            for group in range(part.num_row_groups):
                table = part.read_row_group(group)
                yield _to_batch(table, self.dim), table.column("deleted").to_numpy(zero_copy_only=False)

    def live_ids(self) -> np.ndarray:
        """Ids whose latest row is not a tombstone (sorted)."""
        latest = self._latest_rows()[1]
        return latest.ids[~latest.deleted]

    def count(self) -> int:
        return int((~self._latest_rows()[1].deleted).sum())

    def stored_rows(self) -> int:
        """Rows held in the files, superseded rows and tombstones included (what compaction reclaims)."""
        return sum(len(self._flags_of(s.path)[0]) for s in self.segment_ranges())

    def vectors_of(self, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, vectors) for the latest live row of each id; reads only the row groups needed."""
        for attempt in range(READ_RETRIES):
            try:
                return self._vectors_of(np.asarray(ids, dtype=np.int64))
            except (FileNotFoundError, IndexNotFound):
                if attempt == READ_RETRIES - 1:
                    raise
                self._latest = None  # another writer compacted meanwhile: list the files again
        raise AssertionError("unreachable")

    def _vectors_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((len(ids), self.dim), np.float32)
        found = np.zeros(len(ids), dtype=bool)
        names, latest = self._latest_rows()
        if not len(ids) or not len(latest.ids):
            return found, out
        where = latest.positions_of(ids)
        hit = where >= 0
        file_of = np.where(hit, latest.file[where], -1)
        for file in np.unique(file_of[hit]):
            mine = np.flatnonzero(file_of == file)
            rows = latest.row[where[mine]]
            order = np.argsort(rows, kind="stable")
            part = self._open_files_by_name([names[file]])[0].parquet()
            table = _read_rows(part, rows[order], ["vector"])
            out[mine[order]] = _vectors_of(table, self.dim)
            found[mine] = True
        return found, out

    def scan(self, batch_rows: int = 65536) -> Iterator[VectorBatch]:
        """The current rows (latest per id, tombstoned ids left out), file by file, a row group at a time."""
        for opened, winners in self._winners():
            if not len(winners):
                continue
            for table in _iter_rows(opened.parquet(), winners):
                for start in range(0, table.num_rows, batch_rows):
                    yield _to_batch(table.slice(start, batch_rows), self.dim)

    def sample(self, size: int, seed: int = 0) -> np.ndarray:
        """Up to `size` current vectors drawn uniformly, e.g. to train an inverted file without bias."""
        winners = self._winners()
        total = sum(len(w) for _, w in winners)
        if total == 0:
            return np.empty((0, self.dim), np.float32)
        picks = np.sort(np.random.default_rng(seed).choice(total, size=min(size, total), replace=False))
        out, offset = [], 0
        for opened, rows in winners:
            mine = picks[(picks >= offset) & (picks < offset + len(rows))] - offset
            if len(mine):
                out.append(_vectors_of(_read_rows(opened.parquet(), rows[mine], ["vector"]), self.dim))
            offset += len(rows)
        return np.concatenate(out)

    # ---- compaction ----------------------------------------------------------------------------------

    def compaction_plan(self) -> str | None:
        """'full', 'tail' or None: what `compact()` would do unprompted.

        Full (everything into one file, tombstones dropped) when a quarter of the rows are superseded
        or deleted, or when the files after the first outweigh it; otherwise the files after the first
        merged into one (tombstones kept), so a small update never rewrites a large catalog."""
        segments = self.segment_ranges()
        if len(segments) < 2 and not (segments and self.stored_rows() > self.count()):
            return None
        stored, live = self.stored_rows(), self.count()
        base = len(self._flags_of(segments[0].path)[0])
        if stored - live > stored // 4 or stored - base >= base:
            return "full"
        return "tail" if len(segments) > 2 else None

    def compact(self, mode: str | None = "full") -> dict:
        """Merge files (see `compaction_plan`; `mode=None` means: as the plan says). Crash-safe: the merged
        file is written aside, fsynced and renamed, and only then are the files it covers deleted.

        One compaction or publish at a time (`maintenance`); appends go on meanwhile (their segments come after
        the merged range and are left alone)."""
        if self._maintaining:
            return self._compact(mode)
        with self.maintenance():
            return self._compact(mode)

    def _compact(self, mode: str | None) -> dict:
        self._sweep()
        segments = self.segment_ranges()
        mode = self.compaction_plan() if mode is None else mode
        before = {"files": len(segments), "rows": self.stored_rows()}
        already = len(segments) == 1 and segments[0].drops_tombstones and before["rows"] == self.count()
        if mode is None or not segments or already or (mode == "tail" and len(segments) < 3):
            return {"compacted": False, **before, "files_after": before["files"], "rows_after": before["rows"]}
        chosen = segments if mode == "full" else segments[1:]
        first, last = (1 if mode == "full" else chosen[0].first), chosen[-1].last
        final = self.directory / f"segment-{last:08d}-from-{first:08d}.parquet"
        temporary = self.directory / f".{final.name}.tmp"
        keep = self._merge_winners(chosen, keep_tombstones=mode != "full")
        group_rows = max(1, ROW_GROUP_BYTES // (4 * self.dim))
        with pq.ParquetWriter(temporary, _schema(self.dim), use_dictionary=DICTIONARY_COLUMNS) as writer:
            pending: list[pa.Table] = []  # a store written a batch at a time has small files: gather
            pending_rows = 0  # them into full row groups (a footer entry per group, not per batch)
            for opened, rows in zip(self._open_files(chosen), keep, strict=True):
                for table in _iter_rows(opened.parquet(), rows):
                    pending.append(table)
                    pending_rows += table.num_rows
                    if pending_rows >= group_rows:
                        gathered = pa.concat_tables(pending)
                        full = pending_rows - pending_rows % group_rows
                        writer.write_table(gathered.slice(0, full), row_group_size=group_rows)
                        pending, pending_rows = [gathered.slice(full)], pending_rows - full
            if pending:
                writer.write_table(pa.concat_tables(pending), row_group_size=group_rows)
        fsync_path(temporary)
        with append_lock(self.directory):  # an append numbers its segment from a listing: not mid-swap
            os.replace(temporary, final)
            fsync_path(self.directory)
            for segment in chosen:  # covered by the merged file from here on: readers already ignore them
                if segment.path != final:
                    segment.path.unlink(missing_ok=True)
            fsync_path(self.directory)
        self._latest = None
        after = self.segment_ranges()
        return {"compacted": True, "mode": mode, **before, "files_after": len(after), "rows_after": self.stored_rows()}

    def _sweep(self) -> None:
        """Delete what a crash left behind: temporary files and files a merged one covers.

        All under the append lock: an append elsewhere renames its new segment into place between
        two listings of the folder otherwise, and the second listing would take it for a leftover.
        A view as of an earlier segment (`as_of`) does not see the files after it: it never sweeps."""
        if self._upto is not None:
            return
        with append_lock(self.directory):
            for path in self.directory.glob(".segment-*.tmp"):
                path.unlink(missing_ok=True)
            in_charge = set(self.segments())
            for path in self.directory.glob("segment-*.parquet"):
                if _NAME.fullmatch(path.name) and path not in in_charge:
                    path.unlink(missing_ok=True)

    def _merge_winners(self, chosen: list[Segment], keep_tombstones: bool) -> list[np.ndarray]:
        """Per chosen file, the rows holding the latest row of their id among the chosen files."""
        flags = [self._flags_of(s.path) for s in chosen]
        return _latest_per_file([f[0] for f in flags], [f[1] for f in flags], keep_tombstones)

    # ---- writers side by side ------------------------------------------------------------------------

    def run_in_flight(self, when_alone: Callable[[], None] | None = None) -> contextlib.AbstractContextManager[bool]:
        """Register a run that writes vectors ahead of the database rows that own them, for the block.

        `when_alone` (e.g. tombstoning vectors whose product never reached the database) is called
        only when no other run is in flight: another run's vectors may still be waiting for their
        rows to commit. Yields whether it was called."""
        return in_flight(self.directory / RUNS_LOCK, when_alone)

    @contextlib.contextmanager
    def maintenance(self) -> Iterator[None]:
        """One compaction or publish of the saved index at a time, for the block (another process's or
        thread's waits; this object's own `compact` inside the block goes ahead). Two publishes would
        write the same index folder (its CURRENT pointer, its sweep of old versions)."""
        with exclusive_lock(self.directory / MAINTENANCE_LOCK):
            self._maintaining, self._latest = True, None
            try:
                yield
            finally:
                self._maintaining = False

    # ---- the cache of where rows live ----------------------------------------------------------------

    def _flags_of(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        cached = self._flags.get(path.name)
        if cached is None:
            table = pq.read_table(path, columns=["id", "deleted"])
            cached = (table.column("id").to_numpy(), table.column("deleted").to_numpy(zero_copy_only=False))
            self._flags[path.name] = cached
        return cached

    def _latest_rows(self) -> tuple[tuple[str, ...], _Latest]:
        for attempt in range(READ_RETRIES):
            try:
                return self._read_latest_rows()
            except FileNotFoundError:  # a file listed was merged away meanwhile: list again
                if attempt == READ_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _read_latest_rows(self) -> tuple[tuple[str, ...], _Latest]:
        segments = self.segment_ranges()
        names = tuple(s.path.name for s in segments)
        if self._latest is not None and self._latest[0] == names:
            return self._latest
        for stale in set(self._flags) - set(names):
            del self._flags[stale]
        flags = [self._flags_of(s.path) for s in segments]
        ids = np.concatenate([f[0] for f in flags]) if flags else np.empty(0, np.int64)
        deleted = np.concatenate([f[1] for f in flags]) if flags else np.empty(0, bool)
        file = np.concatenate([np.full(len(f[0]), n, np.int32) for n, f in enumerate(flags)]) if flags else ids[:0]
        row = np.concatenate([np.arange(len(f[0]), dtype=np.int32) for f in flags]) if flags else ids[:0]
        # Not an id lookup but picking each id's latest row among all written (what `positions_of` then looks up).
        order = np.lexsort((np.arange(len(ids)), ids))  # by id, then by write order
        last = np.ones(len(order), dtype=bool)
        last[:-1] = ids[order][1:] != ids[order][:-1]
        chosen = order[last]
        self._latest = (names, _Latest.of(ids[chosen], file[chosen], row[chosen], deleted[chosen]))
        return self._latest

    def _winners(self) -> list[tuple[_OpenedFile, np.ndarray]]:
        """Per file in charge (opened), the sorted rows that hold the latest live version of their id."""
        for attempt in range(READ_RETRIES):
            names, latest = self._latest_rows()
            try:
                files = self._open_files_by_name(list(names))
            except IndexNotFound:  # merged away between listing and opening: list again
                if attempt == READ_RETRIES - 1:
                    raise
                continue
            live = ~latest.deleted
            return [(part, np.sort(latest.row[live & (latest.file == n)])) for n, part in enumerate(files)]
        raise AssertionError("unreachable")

    def _open_files(self, segments: list[Segment]) -> list[_OpenedFile]:
        return self._open_files_by_name([s.path.name for s in segments])

    def _open_files_by_name(self, names: list[str]) -> list[_OpenedFile]:
        """Open every file up front: a compaction deleting them meanwhile cannot pull them away."""
        try:
            return [_OpenedFile(pa.OSFile(str(self.directory / name))) for name in names]
        except FileNotFoundError:
            raise IndexNotFound(
                f"The vector store in {self.directory} changed while it was read (compacted); try again."
            ) from None

    def _write_segment(
        self, ids: np.ndarray, vectors: np.ndarray, attributes: list[ItemAttributes], deleted: bool
    ) -> None:
        if len(attributes) != len(ids):
            raise ValueError(f"got {len(attributes)} attribute rows for {len(ids)} ids")
        if self._upto is not None:
            raise ValueError("a view of the store as of an earlier segment is read-only")
        table = _table(self.model_id, self.dim, ids, vectors, attributes, deleted)
        with append_lock(self.directory):  # the number is taken and used by one process at a time
            number = self.last_segment + 1
            final = self.directory / f"segment-{number:08d}.parquet"
            temporary = self.directory / f".{final.name}.tmp"
            pq.write_table(table, temporary, use_dictionary=DICTIONARY_COLUMNS)
            fsync_path(temporary)
            os.replace(temporary, final)
            fsync_path(self.directory)
        self._flags[final.name] = (ids.copy(), np.full(len(ids), deleted))


def append_lock(directory: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock (flock on the store's folder) while a segment is numbered and written.

    The store usually has one writer (an ingest), but a serving app adds customer views to it too
    (`catalog.search_service.SearchService.write_vectors`): without the lock, two processes could
    take the same segment number and one's rows would replace the other's."""
    return exclusive_lock(directory, folder=True)


class _OpenedFile:
    """An open store file, its Parquet footer read only when used: a parsed footer is about 50 KB, and
    a store written 128 rows a batch has a file per batch, so holding them all parsed at once (a
    compaction, a scan) would take memory in proportion to the catalog. An open handle is a few bytes."""

    def __init__(self, handle: pa.NativeFile) -> None:
        self.handle = handle

    def parquet(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.handle)


def _latest_per_file(ids: list[np.ndarray], deleted: list[np.ndarray], keep_tombstones: bool) -> list[np.ndarray]:
    """Per file, sorted row numbers of the latest row of each id over all the files (in order).

    Not an id lookup (`IdMap`'s job) but a group-by: which of an id's rows was written last."""
    if not ids:
        return []
    all_ids = np.concatenate(ids)
    file = np.concatenate([np.full(len(i), n, np.int32) for n, i in enumerate(ids)])
    row = np.concatenate([np.arange(len(i), dtype=np.int64) for i in ids])
    order = np.lexsort((np.arange(len(all_ids)), all_ids))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = all_ids[order][1:] != all_ids[order][:-1]
    chosen = order[last]
    if not keep_tombstones:
        chosen = chosen[~np.concatenate(deleted)[chosen]]
    return [np.sort(row[chosen[file[chosen] == n]]) for n in range(len(ids))]


def _row_groups(part: pq.ParquetFile) -> list[tuple[int, int]]:
    starts, out = 0, []
    for group in range(part.metadata.num_row_groups):
        rows = part.metadata.row_group(group).num_rows
        out.append((starts, rows))
        starts += rows
    return out


def _iter_rows(part: pq.ParquetFile, rows: np.ndarray, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The given sorted rows of a file, one row group at a time (bounded memory for any file size).

    The search below splits row numbers at row-group bounds: ranges of rows, not an id lookup."""
    for group, (start, size) in enumerate(_row_groups(part)):
        lo, hi = np.searchsorted(rows, [start, start + size])
        if hi > lo:
            yield part.read_row_group(group, columns=columns).take(pa.array(rows[lo:hi] - start))


def _read_rows(part: pq.ParquetFile, rows: np.ndarray, columns: list[str]) -> pa.Table:
    tables = list(_iter_rows(part, rows, columns))
    return pa.concat_tables(tables) if tables else part.schema_arrow.empty_table().select(columns)


def _schema(dim: int) -> pa.Schema:
    return _table("", dim, np.empty(0, np.int64), np.empty((0, dim), np.float32), [], False).schema


def _table(
    model_id: str, dim: int, ids: np.ndarray, vectors: np.ndarray, attributes: list[ItemAttributes], deleted: bool
) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "model_id": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(ids), np.int32)), pa.array([model_id])),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim),
            "deleted": pa.array(np.full(len(ids), deleted)),
            "price": pa.array([a.price if math.isfinite(a.price) else None for a in attributes], pa.float32()),
            "category": pa.array([a.category for a in attributes], pa.string()),
            "vendor": pa.array([a.vendor for a in attributes], pa.string()),
            "in_stock": pa.array([a.in_stock for a in attributes], pa.bool_()),
        }
    )


def _vectors_of(table: pa.Table, dim: int) -> np.ndarray:
    column = table.column("vector").combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)


def _to_batch(table: pa.Table, dim: int) -> VectorBatch:
    prices = table.column("price").to_numpy(zero_copy_only=False)
    attributes = [
        ItemAttributes(price=float("nan") if p is None or p != p else float(p), category=c, vendor=v, in_stock=s)
        for p, c, v, s in zip(
            prices,
            table.column("category").to_pylist(),
            table.column("vendor").to_pylist(),
            table.column("in_stock").to_pylist(),
            strict=True,
        )
    ]
    return VectorBatch(table.column("id").to_numpy(), _vectors_of(table, dim), attributes)

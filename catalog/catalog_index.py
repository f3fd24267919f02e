"""The vector store and the FAISS index of one model, kept in step.

Writes go to the store first (the source of truth), then to the in-memory index. The saved index
records the last store segment it covers; opening it replays newer segments, so a crash between
a store write and an index save loses nothing.

Exact vectors live on disk (memory-mapped when loaded, appended to a spill file when added), and
a flat index outgrowing its size is rebuilt as the planner's choice at once, so a large ingest does
not keep every vector of the catalog in memory twice.

An ingest does not hold a `CatalogIndex`: it writes the store batch by batch and ends with
`publish_index`, which compacts the store and brings the saved index up to date (an inverted file is
extended with the new rows, anything else rebuilt from the store, streamed); a serving process picks
that version up when it next opens the index.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from catalog.workspace import Workspace
from index.build import build_from_store, replay_changes, save_from_store, update_saved
from index.errors import IndexCorrupted, IndexError_, IndexNotFound
from index.filters import ItemAttributes
from index.persistence import load_index, read_manifest, save_index
from index.planner import FLAT_MAX, IndexPlan, plan_index
from index.vector_index import VectorIndex
from index.vector_store import VectorStore

DEFAULT_MEMORY_BUDGET = 4 * 10**9
_spill_numbers = itertools.count()


class CatalogIndex:
    """`repair`: a saved index that is missing or corrupt (`IndexNotFound`, `IndexCorrupted`) is
    rebuilt from the store and saved before it is loaded, as a server does at start-up, so the next
    start loads it rather than rebuilding again; without it (the default, e.g. `vitrine doctor`) a
    missing one is built in memory only and a corrupt one raises."""

    def __init__(
        self,
        workspace: Workspace,
        model_id: str,
        dim: int,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        repair: bool = False,
    ):
        self.workspace = workspace
        self.model_id = model_id
        self.dim = dim
        self.memory_budget = memory_budget
        self.store = VectorStore(workspace.vectors_dir(model_id), model_id, dim)
        self._spill: Path | None = None
        # The store's newest segment this index is known to hold: what a serving process compares
        # with the store to see whether another process has written since (`catalog.index_watch`).
        self.synced_segment = self.store.last_segment
        self.repaired: str | None = None  # why the saved index was rebuilt on opening, if it was
        self.index = self._open_index(repair)

    def _next_spill(self) -> Path:
        directory = self.workspace.home / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"vectors-{os.getpid()}-{next(_spill_numbers)}.f32"

    def _open_index(self, repair: bool = False) -> VectorIndex:
        directory = self.workspace.index_dir(self.model_id)
        self._spill = self._next_spill()
        try:
            index = load_index(
                directory, expected_model_id=self.model_id, expected_dim=self.dim, vectors_path=self._spill
            )
            covered = int(read_manifest(directory).get("extra", {}).get("store_segment", 0))
        except (IndexNotFound, IndexCorrupted) as exc:
            if repair and (self.store.last_segment > 0 or not isinstance(exc, IndexNotFound)):
                self.repaired = str(exc)
                rebuild_saved_index(self.store, directory, self.memory_budget)
                return self._open_index()
            if not isinstance(exc, IndexNotFound):
                raise
            plan = plan_index(self.store.count(), self.dim, self.memory_budget)
            return build_from_store(self.store, plan, vectors_path=self._spill)
        if not self.store.replayable_since(covered):
            # The store was compacted past this saved index, tombstones included: rebuild from it.
            index.close()
            plan = plan_index(self.store.count(), self.dim, self.memory_budget)
            return build_from_store(self.store, plan, vectors_path=self._spill)
        replay_changes(index, self.store, covered)
        return index

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None:
        if len(ids):
            before = self.store.last_segment
            self.store.append(ids, vectors, attributes)
            self.index.upsert(ids, vectors, attributes)
            self._synced_own_segment(before)
            if self.index.spec.kind == "flat" and len(self.index) > FLAT_MAX:
                self._rebuild()  # a flat index holds a full copy of every vector: switch now, not at save

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            before = self.store.last_segment
            self.store.delete(ids)
            self.index.delete(ids)
            self._synced_own_segment(before)

    def _synced_own_segment(self, before: int) -> None:
        """Count the segment this process just wrote as held, when it is the only one since `before`
        (another process's segment in between leaves the index behind, to be refreshed)."""
        if before == self.synced_segment and self.store.last_segment == before + 1:
            self.synced_segment = before + 1

    def _rebuild(self) -> None:
        old, old_spill = self.index, self._spill
        self._spill = self._next_spill()
        plan = plan_index(max(self.store.count(), 1), self.dim, self.memory_budget)
        self.index = build_from_store(self.store, plan, vectors_path=self._spill)
        old.close()
        if old_spill is not None:
            old_spill.unlink(missing_ok=True)

    def save(self) -> None:
        """Save the index; rebuild it first when the catalog has outgrown its kind (e.g. flat → ivf)."""
        plan = plan_index(max(len(self.index), 1), self.dim, self.memory_budget)
        if plan.spec.kind != self.index.spec.kind:
            self._rebuild()
        with self.store.maintenance():  # not at the same time as an ingest's publish of the same folder
            save_index(
                self.index, self.workspace.index_dir(self.model_id), extra={"store_segment": self.store.last_segment}
            )

    def close(self) -> None:
        """Drop the spill file of vectors added in this process (they are saved or in the store)."""
        self.index.close()
        if self._spill is not None:
            self._spill.unlink(missing_ok=True)


def rebuild_saved_index(store: VectorStore, directory: Path, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Write a fresh saved index of everything in `store` (streamed, as `vitrine index rebuild`
    does) and make it current; returns the number of vectors."""
    with store.maintenance():  # another writer's publish would write the same index folder
        covered = store.last_segment
        snapshot = store.as_of(covered)  # appends of other writers meanwhile are replayed on opening
        plan = plan_index(max(snapshot.count(), 1), store.dim, memory_budget)
        return save_from_store(snapshot, plan, directory, extra={"store_segment": covered})


def publish_index(
    workspace: Workspace,
    model_id: str,
    dim: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    compact: str | None = None,
) -> dict:
    """Compact the store (`compact`: None lets the store decide, 'full', 'tail', or 'none') and make
    the saved index cover all of it, so what an ingest wrote becomes what searches load.

    An inverted-file index still right for the catalog is updated: the saved version plus the store's
    later rows, no retraining, no re-encoding (`mode` 'updated'). Otherwise a fresh index is streamed
    from the store (`mode` 'rebuilt'): the first time, when the kind changes (e.g. flat → ivf-sq8),
    when the catalog has outgrown the saved lists, when a full compaction dropped tombstones the
    saved index would need, or when a quarter of its rows would be dead. A flat index is always
    rebuilt: that is a plain copy of the store (no training), and loading one to update it would hold
    every vector in memory.

    One publish or compaction at a time per store (its `maintenance` lock: concurrent ingests of
    different vendors each end here). Other writers' appends go on meanwhile: the index is built from
    the store `as_of` the segment it records, and later segments are replayed when it is opened."""
    store = VectorStore(workspace.vectors_dir(model_id), model_id, dim)
    with store.maintenance():
        return _publish(store, workspace, model_id, dim, memory_budget, compact)


def _publish(
    store: VectorStore, workspace: Workspace, model_id: str, dim: int, memory_budget: int, compact: str | None
) -> dict:
    compaction = {"compacted": False} if compact == "none" else store.compact(compact)
    covered = store.last_segment
    store = store.as_of(covered)  # a fixed set of rows to count and stream, whatever is appended meanwhile
    plan = plan_index(max(store.count(), 1), dim, memory_budget)
    directory = workspace.index_dir(model_id)
    try:
        saved: dict | None = read_manifest(directory)
    except IndexError_:
        saved = None
    outcome = {"store_segment": covered, "compaction": compaction}
    if (
        saved is not None
        and saved.get("extra", {}).get("store_segment") == covered
        and saved.get("index_type") == plan.spec.kind
    ):
        return {
            "count": int(saved["count"]),
            "index_type": plan.spec.kind,
            **outcome,
            "written": False,
            "mode": "unchanged",
        }
    if saved is not None and _updatable(saved, plan, store, covered):
        spill = directory.parent / f".update-{os.getpid()}-{next(_spill_numbers)}.f32"
        try:
            count = update_saved(
                store, directory, int(saved["extra"]["store_segment"]), spill, extra={"store_segment": covered}
            )
        except IndexError_:
            count = None  # a damaged saved index: rebuild it from the store
        finally:
            spill.unlink(missing_ok=True)
        if count is not None:
            return {"count": count, "index_type": saved["index_type"], **outcome, "written": True, "mode": "updated"}
    count = save_from_store(store, plan, directory, extra={"store_segment": covered})
    return {"count": count, "index_type": plan.spec.kind, **outcome, "written": True, "mode": "rebuilt"}


def _updatable(saved: dict, plan: IndexPlan, store: VectorStore, covered: int) -> bool:
    """Whether the saved index can be brought up to date rather than rebuilt (see `publish_index`)."""
    since = saved.get("extra", {}).get("store_segment")
    engine = saved.get("engine", {})
    return (
        not plan.spec.exact
        and saved.get("index_type") == plan.spec.kind
        and saved.get("model_id") == store.model_id
        and saved.get("dim") == store.dim
        and isinstance(since, int)
        and since <= covered
        and store.replayable_since(since)
        # Lists sized for a quarter of today's catalog or more: the catalog has not outgrown them.
        and plan.spec.nlist <= 2 * int(engine.get("nlist", 0))
        and engine.get("pq_m") == plan.spec.pq_m
    )

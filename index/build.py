"""Build a `VectorIndex` from the vector store, the source of truth, write one straight to disk, or
bring a saved one up to date with what the store gained since it was saved."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from index.columns import Dictionary, attribute_codes
from index.engines import Engine
from index.persistence import RowBlock, VersionWriter, load_index, save_index
from index.planner import IndexPlan
from index.vector_index import VectorIndex
from index.vector_store import VectorStore

TRAINING_PER_LIST = 64


def build_from_store(
    store: VectorStore,
    plan: IndexPlan,
    progress: Callable[[int], None] | None = None,
    vectors_path: Path | None = None,
) -> VectorIndex:
    """Train on a uniform sample of the whole store (not the first vendor's rows), then add everything.

    `vectors_path`: keep the exact vectors in that file rather than in memory.
    """
    index = VectorIndex(store.dim, store.model_id, plan.spec, vectors_path=vectors_path)
    if not plan.spec.exact:
        index.train(store.sample(TRAINING_PER_LIST * plan.spec.nlist))
    for batch in store.scan():
        index.add(batch.ids, batch.vectors, batch.attributes)
        if progress is not None:
            progress(len(batch.ids))
    return index


def save_from_store(
    store: VectorStore,
    plan: IndexPlan,
    directory: Path,
    extra: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a saved index (the format `load_index` reads) straight from the store, batch by batch.

    Unlike `build_from_store` + `save_index`, no index is held: vectors and columns stream to their
    files, so memory stays that of one batch, plus the quantised codes for the inverted-file kinds.
    A flat index saves no FAISS file (see `VersionWriter.write_engine`). Returns the number of vectors.
    """
    count = store.count()
    version = VersionWriter(directory)
    engine = None if plan.spec.exact else Engine(plan.spec, store.dim)
    if engine is not None:
        engine.train(store.sample(TRAINING_PER_LIST * plan.spec.nlist))
    categories, vendors = Dictionary(), Dictionary()
    version.write_rows(store.dim, count, _store_blocks(store, engine, categories, vendors, progress))
    version.write_dictionaries({"categories": categories.names, "vendors": vendors.names})
    version.write_engine(engine.index if engine is not None else None)
    version.publish(store.model_id, plan.spec, count, extra)
    return count


def _store_blocks(
    store: VectorStore,
    engine: Engine | None,
    categories: Dictionary,
    vendors: Dictionary,
    progress: Callable[[int], None] | None,
) -> Iterator[RowBlock]:
    """The store's current rows as blocks of the saved format; each block, once written, also goes
    into `engine` and the dictionaries learn its names, so both are complete when the rows are."""
    for batch in store.scan():
        n = len(batch.ids)
        codes = attribute_codes(batch.attributes, categories, vendors)
        yield RowBlock({"ids": batch.ids, "alive": np.ones(n, dtype=bool), **codes}, batch.vectors)
        if engine is not None:
            engine.add(batch.vectors)
        if progress is not None:
            progress(n)


def replay_changes(index: VectorIndex, store: VectorStore, since: int) -> None:
    """Apply to `index`, which covered store segment `since`, every store row written after it.

    A merged file spanning `since` is replayed whole (see `VectorStore.changes_since`); rows the
    index already holds unchanged are skipped, so such a replay leaves no dead rows behind."""
    for batch, deleted in store.changes_since(since):
        if deleted.any():
            index.delete(batch.ids[deleted])
        keep = np.flatnonzero(~deleted)
        if len(keep):
            attributes = [batch.attributes[i] for i in keep.tolist()]
            fresh = ~index.holds(batch.ids[keep], batch.vectors[keep], attributes)
            if fresh.any():
                changed = keep[fresh]
                attributes = [batch.attributes[i] for i in changed.tolist()]
                index.upsert(batch.ids[changed], batch.vectors[changed], attributes)


def update_saved(
    store: VectorStore,
    directory: Path,
    since: int,
    spill_path: Path,
    max_dead_share: float = 0.25,
    extra: dict[str, Any] | None = None,
) -> int | None:
    """Extend the saved index in `directory` (which covered store segment `since`) with the store's
    later rows and save it as a new version: no retraining and no re-encoding of the rows it had, so
    a small update to a large catalog costs the update plus a copy of the files, not a rebuild.

    Returns the number of vectors, or None (nothing written) when the update would leave more than
    `max_dead_share` of the rows dead: a rebuild from the store is due then. Vectors added here go
    to `spill_path`, not memory; the caller removes that file."""
    index = load_index(directory, expected_model_id=store.model_id, expected_dim=store.dim, vectors_path=spill_path)
    try:
        replay_changes(index, store, since)
        if index.rows - index.count > max_dead_share * max(index.rows, 1):
            return None
        save_index(index, directory, extra=extra)
        return index.count
    finally:
        index.close()

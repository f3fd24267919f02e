"""Build a `VectorIndex` from the vector store, the source of truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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

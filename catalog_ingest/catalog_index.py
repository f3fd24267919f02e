"""The vector store and the FAISS index of one model, kept in step.

Writes go to the store first (the source of truth), then to the in-memory index. The saved index
records the last store segment it covers; opening it replays newer segments, so a crash between
a store write and an index save loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from catalog_ingest.workspace import Workspace
from index.build import build_from_store
from index.errors import IndexNotFound
from index.filters import ItemAttributes
from index.persistence import load_index, read_manifest, save_index
from index.planner import plan_index
from index.vector_index import VectorIndex
from index.vector_store import VectorStore

DEFAULT_MEMORY_BUDGET = 4 * 10**9


class CatalogIndex:
    def __init__(self, workspace: Workspace, model_id: str, dim: int, memory_budget: int = DEFAULT_MEMORY_BUDGET):
        self.workspace = workspace
        self.model_id = model_id
        self.dim = dim
        self.memory_budget = memory_budget
        self.store = VectorStore(workspace.vectors_dir(model_id), model_id, dim)
        self.index = self._open_index()

    def _open_index(self) -> VectorIndex:
        directory = self.workspace.index_dir(self.model_id)
        try:
            index = load_index(directory, expected_model_id=self.model_id, expected_dim=self.dim)
            covered = int(read_manifest(directory).get("extra", {}).get("store_segment", 0))
        except IndexNotFound:
            plan = plan_index(self.store.count(), self.dim, self.memory_budget)
            return build_from_store(self.store, plan)
        for batch, deleted in self.store.changes_since(covered):
            if deleted.any():
                index.delete(batch.ids[deleted])
            keep = ~deleted
            if keep.any():
                index.upsert(
                    batch.ids[keep], batch.vectors[keep], [a for a, k in zip(batch.attributes, keep, strict=True) if k]
                )
        return index

    def write(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]) -> None:
        if len(ids):
            self.store.append(ids, vectors, attributes)
            self.index.upsert(ids, vectors, attributes)

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.store.delete(ids)
            self.index.delete(ids)

    def save(self) -> None:
        """Save the index; rebuild it first when the catalog has outgrown its kind (e.g. flat → ivf)."""
        plan = plan_index(max(len(self.index), 1), self.dim, self.memory_budget)
        if plan.spec.kind != self.index.spec.kind:
            self.index = build_from_store(self.store, plan)
        save_index(
            self.index, self.workspace.index_dir(self.model_id), extra={"store_segment": self.store.last_segment}
        )

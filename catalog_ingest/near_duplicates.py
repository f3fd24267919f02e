"""One vendor's image vectors during an ingest, compact, to report near-duplicate products.

The ingest no longer holds the catalog's index in memory (it writes the vector store and rebuilds
the saved index at the end), so near-duplicates are looked for here: only this vendor's vectors
(near-duplicates are reported within a vendor), as float16 codes (FAISS scalar quantiser: half
the bytes of float32, cosines good to about 1e-3, plenty for a 0.97 threshold), searched exactly.
Memory is 2·dim bytes plus 9 bytes of bookkeeping per vendor image.
"""

from __future__ import annotations

import faiss
import numpy as np

from index.columns import GrowableArray
from index.vector_store import VectorStore


class VendorVectors:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._codes = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        self._ids = GrowableArray(np.int64)
        self._alive = GrowableArray(np.bool_)
        self._dead = 0
        # Rows loaded from the store, by id: the only rows an update or removal in this run can replace
        # (a run sees each product once).
        self._loaded_ids = np.empty(0, np.int64)
        self._loaded_rows = np.empty(0, np.int64)

    @classmethod
    def load(cls, store: VectorStore, vendor: str) -> VendorVectors:
        """This vendor's current vectors, read from the store a row group at a time."""
        found = cls(store.dim)
        for batch in store.scan():
            mine = np.fromiter((a.vendor == vendor for a in batch.attributes), bool, len(batch.ids))
            if mine.any():
                found.add(batch.ids[mine], batch.vectors[mine])
        order = np.argsort(found._ids.view, kind="stable")
        found._loaded_ids, found._loaded_rows = found._ids.view[order].copy(), order.astype(np.int64)
        return found

    def __len__(self) -> int:
        return len(self._ids) - self._dead

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """New vectors of this run; an id loaded from the store is replaced (its old row dies)."""
        self.remove(ids)
        self._ids.extend(np.asarray(ids, np.int64))
        self._alive.extend(np.ones(len(ids), dtype=bool))
        self._codes.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64)
        if not len(ids) or not len(self._loaded_ids):
            return
        where = np.searchsorted(self._loaded_ids, ids).clip(0, len(self._loaded_ids) - 1)
        rows = self._loaded_rows[where[self._loaded_ids[where] == ids]]
        rows = rows[self._alive.view[rows]]
        self._alive.view[rows] = False
        self._dead += len(rows)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query, up to k (id, cosine) best first, among live rows."""
        if len(self) == 0:
            return [[] for _ in range(len(queries))]
        params = None
        if self._dead:
            bitmap = np.packbits(self._alive.view, bitorder="little")
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(self._ids), faiss.swig_ptr(bitmap)))
        scores, rows = self._codes.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        ids = self._ids.view
        return [
            [(int(ids[r]), float(s)) for s, r in zip(scores[q], rows[q], strict=True) if r >= 0]
            for q in range(len(queries))
        ]

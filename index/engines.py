"""FAISS structures over internal row numbers: exact (flat) and inverted-file with quantised codes.

An engine only finds candidate rows for a query; `VectorIndex` owns ids, deletions, filters and
the exact re-ranking. Rows are added in order, so FAISS's own sequential ids are our rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import faiss
import numpy as np

EngineKind = Literal["flat", "ivf-sq8", "ivf-pq"]


@dataclass(frozen=True)
class EngineSpec:
    """What to build. `nlist`, `nprobe` and `pq_m` matter for the inverted-file kinds only."""

    kind: EngineKind = "flat"
    nlist: int = 0
    nprobe: int = 16
    pq_m: int = 64
    rerank_factor: int = 4

    @property
    def factory_string(self) -> str:
        if self.kind == "flat":
            return "Flat"
        if self.kind == "ivf-sq8":
            return f"IVF{self.nlist},SQ8"
        return f"IVF{self.nlist},PQ{self.pq_m}"

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def to_json(self) -> dict:
        return asdict(self)


class Engine:
    """One FAISS index whose ids are our row numbers."""

    def __init__(self, spec: EngineSpec, dim: int, index: faiss.Index | None = None) -> None:
        self.spec = spec
        self.dim = dim
        self.index = (
            index if index is not None else faiss.index_factory(dim, spec.factory_string, faiss.METRIC_INNER_PRODUCT)
        )

    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def train(self, sample: np.ndarray) -> None:
        if not self.index.is_trained:
            self.index.train(np.ascontiguousarray(sample, dtype=np.float32))

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(
        self, queries: np.ndarray, k: int, allowed_bitmap: np.ndarray | None = None, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), rows -1 where fewer than k were found. `allowed_bitmap`: packed, little-endian bits."""
        selector = None
        if allowed_bitmap is not None:
            selector = faiss.IDSelectorBitmap(len(allowed_bitmap), faiss.swig_ptr(allowed_bitmap))
        if self.spec.kind == "flat":
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        else:
            params = faiss.SearchParametersIVF(nprobe=min(nprobe or self.spec.nprobe, self.spec.nlist))
            if selector is not None:
                params.sel = selector
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        return scores, rows


def default_nlist(count: int) -> int:
    """About 4·sqrt(n) lists, a power of two: short lists, well-trained centroids."""
    return int(min(65536, max(256, 2 ** round(math.log2(4 * math.sqrt(max(count, 1)))))))

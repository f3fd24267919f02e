"""`VectorIndex`: int64 ids → unit vectors, with filtered top-k search, upserts and deletes.

Rows are append-only. An upsert appends a new row and the old one dies; a delete kills the row.
Dead rows stay in the FAISS structure until `compact()` and are masked out of every search with
a bitmap selector, so deletes work the same for every index kind and are O(1).

Search strategy per query batch:
- no filter, nothing deleted: the plain FAISS search (plus exact re-ranking for quantised kinds);
- a filter or deletions: a bitmap of allowed rows; few allowed rows → exact scan of just those
  rows; many → the FAISS search restricted by the bitmap, with more lists probed the rarer the
  allowed rows are, so pages come back full; any short page falls back to the exact scan.
Quantised kinds re-rank `rerank_factor * k` candidates with the exact float vectors, so scores are
true cosines and quantisation costs (almost) no recall. Exact scans and re-ranking are FAISS's
(`index.exact`); every path orders equal scores the same way, the older row first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from index import exact
from index.columns import AttributeColumns, Dictionary, GrowableArray, VectorRows
from index.engines import Engine, EngineSpec
from index.errors import IndexMismatch
from index.filters import AllowList, ItemAttributes, SearchFilter
from index.id_map import IdMap
from index.rwlock import ReadWriteLock

#: When the allowed rows' vectors total at most this many bytes, a filtered search scans them
#: exactly (gathering 32 MB takes about 3 ms here) instead of asking FAISS: exact results at any
#: selectivity, where an inverted file would have to probe most of its lists to stay accurate.
EXACT_SCAN_BYTES = 32 * 2**20
#: Rows needed before an inverted-file index trains itself (per list); until then, exact scans.
TRAIN_ROWS_PER_LIST = 39
NORM_TOLERANCE = 1e-3
_NOT_CHOSEN = np.zeros(1, dtype=bool)


@dataclass(frozen=True)
class SearchResult:
    """Per query, ids best first with cosine scores; padded with id -1 / score -inf when short."""

    ids: np.ndarray
    scores: np.ndarray

    def hits(self, query: int = 0) -> list[tuple[int, float]]:
        keep = self.ids[query] >= 0
        return list(zip(self.ids[query][keep].tolist(), self.scores[query][keep].tolist(), strict=True))


@dataclass
class IndexState:
    """Everything a saved index consists of; what `persistence` writes and reads."""

    model_id: str
    dim: int
    spec: EngineSpec
    count: int
    rows: int
    vectors: VectorRows
    arrays: dict[str, np.ndarray]
    dictionaries: dict[str, list[str]]
    engine: faiss.Index | None

    @classmethod
    def from_manifest(
        cls,
        manifest: dict,
        vectors: np.ndarray,
        arrays: dict[str, np.ndarray],
        dictionaries: dict[str, list[str]],
        engine: faiss.Index | None,
        spill_path: Path | None = None,
    ) -> IndexState:
        return cls(
            vectors=VectorRows(int(manifest["dim"]), base=vectors, spill_path=spill_path),
            model_id=manifest["model_id"],
            dim=int(manifest["dim"]),
            spec=EngineSpec(**manifest["engine"]),
            count=int(manifest["count"]),
            rows=int(manifest["rows"]),
            arrays=arrays,
            dictionaries=dictionaries,
            engine=engine,
        )


class VectorIndex:
    """A FAISS-backed vector index keyed by int64 ids, safe for concurrent searches and one writer."""

    def __init__(
        self,
        dim: int,
        model_id: str,
        spec: EngineSpec | None = None,
        vectors_path: Path | None = None,
        exact_scan_bytes: int = EXACT_SCAN_BYTES,
    ) -> None:
        """`vectors_path`: keep the exact vectors in this file instead of memory (big catalogs)."""
        self.dim = dim
        self.exact_scan_bytes = exact_scan_bytes
        self.model_id = model_id
        self.spec = spec or EngineSpec()
        self._engine = Engine(self.spec, dim)
        self._vectors = VectorRows(dim, spill_path=vectors_path)
        self._ids = GrowableArray(np.int64)
        self._alive = GrowableArray(np.bool_)
        self._attributes = AttributeColumns()
        self._id_map = IdMap()
        self._lock = ReadWriteLock()
        self._live_cache: tuple[np.ndarray, np.ndarray] | None = None  # (live-row mask, its FAISS bitmap)
        # Per (shift, bits) of an `AllowList`: the distinct keys of all rows and each row's position
        # among them, so an allow-list becomes a row mask with one gather, not a set test per row.
        self._key_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._universe_cache: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # ---- reading -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._id_map)

    @property
    def count(self) -> int:
        return len(self._id_map)

    @property
    def rows(self) -> int:
        """Rows held, dead ones included (what `compact()` would reclaim is `rows - count`)."""
        return len(self._ids)

    def __contains__(self, item_id: int) -> bool:
        return self.contains(item_id)

    def contains(self, item_id: int) -> bool:
        with self._lock.read():
            return self._id_map.row_of(item_id) >= 0

    def ids(self) -> np.ndarray:
        """Every id in the index, sorted."""
        with self._lock.read():
            return self._id_map.items()[0]

    def attributes_of(self, item_id: int) -> ItemAttributes | None:
        with self._lock.read():
            row = self._id_map.row_of(item_id)
            return self._attributes.row(row) if row >= 0 else None

    def vector_of(self, item_id: int) -> np.ndarray | None:
        with self._lock.read():
            row = self._id_map.row_of(item_id)
            return self._vectors.take(np.asarray([row]))[0] if row >= 0 else None

    def holds(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes]
    ) -> np.ndarray:
        """Per id, whether the index already holds it live with exactly this vector and these attributes.

        A replay of store rows the index may already have (a merged file that spans the point it was
        saved at) skips those, so replaying adds no dead rows."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        with self._lock.read():
            rows = self._id_map.rows_of(ids)
            same = rows >= 0
            where = np.flatnonzero(same)
            if not len(where):
                return same
            held = rows[where]
            columns = self._attributes
            wanted = [attributes[i] for i in where.tolist()]
            stored_price = columns.price.view[held]
            price = np.fromiter((a.price for a in wanted), np.float32, len(wanted))
            equal = (self._vectors.take(held) == vectors[where]).all(axis=1)
            equal &= (stored_price == price) | (np.isnan(stored_price) & np.isnan(price))
            equal &= columns.in_stock.view[held] == np.fromiter((a.in_stock for a in wanted), np.bool_, len(wanted))
            names_c, names_v = columns.categories.names, columns.vendors.names
            codes_c, codes_v = columns.category.view[held].tolist(), columns.vendor.view[held].tolist()
            equal &= np.fromiter(
                (
                    names_c[c] == a.category and names_v[v] == a.vendor
                    for a, c, v in zip(wanted, codes_c, codes_v, strict=True)
                ),
                np.bool_,
                len(wanted),
            )
            same[where] = equal
            return same

    def search(self, queries: np.ndarray, k: int = 10, search_filter: SearchFilter | None = None) -> SearchResult:
        """Top-k ids and cosine scores for each query vector (shape (D,) or (N, D))."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.shape[1] != self.dim:
            raise IndexMismatch(f"query vectors have dimension {queries.shape[1]}, the index holds {self.dim}")
        if k < 1:
            raise ValueError("k must be at least 1")
        search_filter = search_filter or SearchFilter()
        with self._lock.read():
            allowed = self._allowed_rows(search_filter)
            scores, rows = self._search_rows(queries, k, allowed, filtered=not search_filter.is_empty)
            ids = self._ids.view[np.maximum(rows, 0)] if len(self._ids) else rows.copy()
            ids[rows < 0] = -1
        return SearchResult(ids=ids, scores=scores)

    # ---- persistence support -------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[IndexState]:
        """A consistent view for saving: writers wait, searches go on."""
        with self._lock.read():
            engine = self._engine.index if (self._engine.ntotal or self._engine.is_trained) else None
            yield IndexState(
                model_id=self.model_id,
                dim=self.dim,
                spec=self.spec,
                count=len(self._id_map),
                rows=len(self._ids),
                vectors=self._vectors,
                arrays={
                    "ids": self._ids.view,
                    "alive": self._alive.view,
                    "price": self._attributes.price.view,
                    "category": self._attributes.category.view,
                    "vendor": self._attributes.vendor.view,
                    "in_stock": self._attributes.in_stock.view,
                },
                dictionaries={
                    "categories": list(self._attributes.categories.names),
                    "vendors": list(self._attributes.vendors.names),
                },
                engine=engine,
            )

    @classmethod
    def from_state(cls, state: IndexState) -> VectorIndex:
        index = cls(state.dim, state.model_id, state.spec)
        arrays = state.arrays
        rows = len(arrays["ids"])
        if any(len(arrays[name]) != rows for name in arrays) or len(state.vectors) != rows:
            raise ValueError("index arrays disagree on the number of rows")
        if state.engine is not None:
            index._engine = Engine(state.spec, state.dim, state.engine)
        index._vectors = state.vectors
        index._ids = GrowableArray(np.int64, initial=arrays["ids"])
        index._alive = GrowableArray(np.bool_, initial=arrays["alive"])
        columns = index._attributes
        columns.price = GrowableArray(np.float32, initial=arrays["price"])
        columns.category = GrowableArray(np.int32, initial=arrays["category"])
        columns.vendor = GrowableArray(np.int32, initial=arrays["vendor"])
        columns.in_stock = GrowableArray(np.bool_, initial=arrays["in_stock"])
        columns.categories = Dictionary(state.dictionaries["categories"])
        columns.vendors = Dictionary(state.dictionaries["vendors"])
        live = np.flatnonzero(index._alive.view)
        index._id_map = IdMap(index._ids.view[live], live)
        if len(index._id_map) != state.count:
            raise ValueError(f"manifest says {state.count} ids, the arrays hold {len(index._id_map)}")
        index._feed_engine()
        return index

    # ---- writing -------------------------------------------------------------------------------------

    def add(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes] | None = None
    ):
        """Add new ids; refuses ids already present (use `upsert` to replace)."""
        ids, vectors = self._validated(ids, vectors)
        with self._lock.write():
            present = ids[self._id_map.contains(ids)]
            if len(present):
                raise ValueError(
                    f"{len(present)} ids are already in the index (e.g. {present[:5].tolist()}); use upsert"
                )
            self._append(ids, vectors, attributes)

    def upsert(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes] | None = None
    ) -> None:
        """Add or replace: an id already present gets the new vector and attributes."""
        ids, vectors = self._validated(ids, vectors)
        with self._lock.write():
            self._kill(self._id_map.rows_of(ids))
            self._append(ids, vectors, attributes)

    def delete(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove ids; returns how many were present. Absent ids are ignored."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        with self._lock.write():
            rows = self._id_map.remove(ids)
            self._kill(rows)
            return int((rows >= 0).sum())

    def close(self) -> None:
        """Release files the index holds open (a spill file of vectors); the index is unusable after."""
        with self._lock.write():
            self._vectors.close()

    def set_nprobe(self, nprobe: int) -> None:
        """Lists an inverted file probes per query: the recall/latency dial (no effect on flat)."""
        if nprobe < 1:
            raise ValueError("nprobe must be at least 1")
        with self._lock.write():
            self.spec = replace(self.spec, nprobe=nprobe)
            self._engine.spec = self.spec

    def train(self, sample: np.ndarray) -> None:
        """Train an inverted-file index on a representative sample before bulk adds (a no-op for flat).

        Without it the index trains itself on the first rows it receives, which is fine for
        random order but biased when rows arrive vendor by vendor.
        """
        with self._lock.write():
            if not self._engine.is_trained:
                self._engine.train(np.atleast_2d(np.asarray(sample, dtype=np.float32)))
                self._feed_engine()

    def compact(self) -> None:
        """Drop dead rows and rebuild the FAISS structure, keeping trained centroids (no retraining)."""
        with self._lock.write():
            live = np.flatnonzero(self._alive.view)
            vectors, ids = self._vectors.take(live), self._ids.view[live].copy()
            attributes = [self._attributes.row(int(r)) for r in live]
            keep_training = self._engine.is_trained and not self.spec.exact
            self._engine = Engine(self.spec, self.dim, _emptied(self._engine.index) if keep_training else None)
            self._vectors = VectorRows(self.dim)
            self._ids = GrowableArray(np.int64)
            self._alive = GrowableArray(np.bool_)
            self._attributes = AttributeColumns()
            self._id_map = IdMap()
            self._append(ids, vectors, attributes)

    # ---- internals -----------------------------------------------------------------------------------

    def _validated(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if vectors.shape != (len(ids), self.dim):
            raise IndexMismatch(
                f"expected {len(ids)} vectors of dimension {self.dim} (model {self.model_id}), "
                f"got shape {vectors.shape}"
            )
        if len(np.unique(ids)) != len(ids):
            raise ValueError("the same id appears twice in one call")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        norms = np.linalg.norm(vectors, axis=1)
        if len(norms) and np.abs(norms - 1).max() > NORM_TOLERANCE:
            raise ValueError(
                "vectors must be L2-normalised (cosine = inner product); got norms up to "
                f"{norms.max():.4f} and down to {norms.min():.4f}"
            )
        return ids, vectors

    def _append(self, ids: np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes] | None) -> None:
        first = len(self._ids)
        self._attributes.extend(attributes, len(ids))
        self._vectors.extend(vectors)
        self._ids.extend(ids)
        self._alive.extend(np.ones(len(ids), dtype=bool))
        self._id_map.set(ids, np.arange(first, first + len(ids), dtype=np.int64))
        self._live_cache = None
        self._key_cache = {}
        self._universe_cache = []
        if self._engine.is_trained and self._engine.ntotal == first:
            self._engine.add(vectors)  # straight from memory: no read-back of rows kept on disk
        else:
            self._feed_engine()

    def _feed_engine(self) -> None:
        """Add rows the engine lacks; an untrained inverted file trains once it has enough rows."""
        pending = len(self._vectors) - self._engine.ntotal
        if pending <= 0:
            return
        if not self._engine.is_trained:
            if len(self._vectors) < TRAIN_ROWS_PER_LIST * max(self.spec.nlist, 1):
                return  # searched exactly until then
            sample_rows = np.random.default_rng(0).choice(
                len(self._vectors), size=min(len(self._vectors), 256 * self.spec.nlist), replace=False
            )
            self._engine.train(self._vectors.take(np.sort(sample_rows)))
        for start in range(self._engine.ntotal, len(self._vectors), 65536):
            self._engine.add(self._vectors.slice(start, min(start + 65536, len(self._vectors))))

    def _kill(self, rows: np.ndarray) -> None:
        rows = rows[rows >= 0]
        if len(rows):
            self._alive.view[rows] = False
            self._live_cache = None

    def _allowed_rows(self, search_filter: SearchFilter) -> np.ndarray | None:
        """Mask of rows a search may return, or None when every row may be returned."""
        if search_filter.is_empty:
            return None if len(self._ids) == len(self._id_map) else self._live_rows()[0]
        allowed = self._alive.view.copy()
        if search_filter.constrains_attributes:
            allowed &= self._attributes.mask(search_filter)
        if search_filter.exclude_ids:
            excluded = self._id_map.rows_of(np.fromiter(search_filter.exclude_ids, np.int64))
            allowed[excluded[excluded >= 0]] = False
        if search_filter.allow is not None:
            allowed &= self._allow_mask(search_filter.allow)
        return allowed

    def _allow_mask(self, allow: AllowList) -> np.ndarray:
        """Rows whose key is on the allow-list: the row keys are cached between writes (one
        `np.unique` per index version), so a query costs a binary search of its keys and a gather;
        a subset of a known universe costs one gather over the rows."""
        rows = len(self._ids)
        cached = self._key_cache.get((allow.shift, allow.bits))
        if cached is None or len(cached[1]) != rows:
            distinct, where = np.unique(allow.key_of(self._ids.view), return_inverse=True)
            cached = (distinct, where.astype(np.int32 if len(distinct) < 2**31 else np.int64))
            self._key_cache[(allow.shift, allow.bits)] = cached  # a race between readers stores equal values
        distinct, where = cached
        if not len(distinct) or not len(allow):
            return np.zeros(rows, dtype=bool)
        if allow.universe is not None and allow.chosen is not None:
            positions = self._universe_positions(allow.universe, distinct, where)
            # position len(universe) is "not in the universe": a False appended to the choice
            return np.concatenate((allow.chosen, _NOT_CHOSEN))[positions]
        listed = np.zeros(len(distinct), dtype=bool)
        position = np.minimum(np.searchsorted(distinct, allow.keys), len(distinct) - 1)
        listed[position[distinct[position] == allow.keys]] = True
        return listed[where]

    def _universe_positions(self, universe: np.ndarray, distinct: np.ndarray, where: np.ndarray) -> np.ndarray:
        """For an `AllowList` universe: each row's key's position in the universe, or
        `len(universe)` where the universe lacks it; kept (for the two latest universes) until the
        next write."""
        for known, keys, positions in self._universe_cache:
            if known is universe and keys is distinct:
                return positions
        position = np.minimum(np.searchsorted(universe, distinct), max(len(universe) - 1, 0))
        if len(universe):
            position[universe[position] != distinct] = len(universe)
        else:
            position[:] = 0
        kind = np.int32 if len(universe) < 2**31 else np.int64
        positions = position.astype(kind)[where]
        self._universe_cache = [(universe, distinct, positions), *self._universe_cache[:1]]
        return positions

    def _search_rows(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, filtered: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """`allowed` masks dead and filtered-out rows; `filtered` says whether a filter (not just
        deletions) restricts the search, which is what decides between exact scan and FAISS."""
        total = len(self._ids)
        n_allowed = total if allowed is None else int(np.count_nonzero(allowed))
        if n_allowed == 0 or total == 0:
            return _empty(len(queries), k)
        small = n_allowed * self.dim * 4 <= self.exact_scan_bytes
        if allowed is not None and ((filtered and small) or self._engine.ntotal == 0):
            return self._exact(queries, k, np.flatnonzero(allowed))
        if self._engine.ntotal == 0:
            return self._exact(queries, k, None)
        scores, rows = self._engine_search(queries, k, allowed, n_allowed if filtered else None)
        if self._engine.ntotal < total:  # rows not yet in the (untrained) engine: scan them exactly
            tail = np.arange(self._engine.ntotal, total)
            if allowed is not None:
                tail = tail[allowed[tail]]
            scores, rows = exact.merge([(scores, rows), self._exact(queries, k, tail)], k, len(queries))
        short = (rows < 0).any(axis=1) & (n_allowed >= k)
        if short.any():  # rare: a restricted FAISS search came back short; scan those queries exactly
            candidates = np.flatnonzero(allowed) if allowed is not None else None
            scores[short], rows[short] = self._exact(queries[short], k, candidates)
        return scores, rows

    def _engine_search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, n_filtered: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        fetch = k if self.spec.exact else k * self.spec.rerank_factor
        live = self._live_cache
        if allowed is None:
            bitmap = None
        elif live is not None and allowed is live[0]:
            bitmap = live[1]  # deletions only: the cached bitmap, not one packed per query
        else:
            bitmap = self._bitmap(allowed)
        nprobe = self.spec.nprobe
        if n_filtered is not None and not self.spec.exact:
            # The rarer the allowed rows, the farther their nearest ones may lie: probe more lists,
            # in proportion to 1/selectivity, up to half of them (the exact scan takes the rarest).
            # Selectivity is counted among live rows, so deletions alone do not change the probing.
            selectivity = n_filtered / max(len(self._id_map), 1)
            ceiling = max(nprobe, self.spec.nlist // 2)
            nprobe = int(min(ceiling, max(nprobe, math.ceil(nprobe / selectivity))))
        scores, rows = self._engine.search(queries, fetch, bitmap, nprobe)
        if self.spec.exact:
            return exact.ordered(scores, rows)
        # FAISS scores the candidates on the exact vectors where they lie. Not `IndexRefineFlat`: it
        # keeps its own copy of every vector in memory, where ours may be memory-mapped from disk.
        return exact.rerank(self._vectors, queries, rows, k)

    def _exact(self, queries: np.ndarray, k: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k over `rows` (ascending; all rows when None), by FAISS (see `index.exact`)."""
        return exact.top_k(self._vectors, queries, k, rows)

    def _live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Live-row mask and bitmap, cached between writes (searches share them read-only)."""
        cache = self._live_cache
        if cache is None:
            mask = self._alive.view.copy()
            cache = self._live_cache = (mask, self._bitmap(mask))
        return cache

    def _bitmap(self, allowed: np.ndarray) -> np.ndarray:
        """Packed bitmap over FAISS rows, in the bit order FAISS's IDSelectorBitmap reads."""
        return np.packbits(allowed[: self._engine.ntotal], bitorder="little")


def _empty(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def _emptied(trained: faiss.Index) -> faiss.Index:
    """A copy of a trained inverted-file index with its lists emptied (centroids kept)."""
    clone = faiss.clone_index(trained)
    clone.reset()
    return clone

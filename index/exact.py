"""Exact inner-product search and re-ranking with FAISS, reading the vectors where they lie.

`VectorRows` keeps its rows in at most two C-contiguous float32 arrays (a saved base, memory-mapped,
and the rows added since, in memory or in a spill file). FAISS reads rows from those arrays in
place and by row number (`knn_inner_products_by_idx`), so scoring a few rows touches only those
rows' pages, in memory or on disk, and copies nothing; a batch of many queries over a subset gathers
it block by block for `faiss.knn` instead, which amortises the copy over the queries. FAISS selects
the best k of each array or block (of equal scores, the first rows it meets: the lowest); those few
per query are merged by `merge`.

One rule for every result: the top k by score, equal scores by row (the older row first), a short
page padded with row -1 and score -inf.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from index.columns import VectorRows

#: Up to this many queries a scan over a subset reads the rows in place (one pass per query, no
#: copy: the serving case of one photo); more share one gathered copy of each block of rows.
IN_PLACE_QUERIES = 8
#: Rows gathered at a time for a batch of queries: bounds the copy (128 MB at 512 dimensions).
BLOCK_ROWS = 65_536
_NO_ROW = np.iinfo(np.int64).max  # sorts after every row, then becomes -1


def top_k(
    vectors: VectorRows, queries: np.ndarray, k: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the exact top k of each query among `rows` (ascending; None: every row)."""
    queries = _as_queries(queries)
    found = []
    for offset, part in vectors.parts():
        if rows is None:  # a whole array is contiguous: FAISS scans it in place
            found.append(_shifted(*faiss.knn(queries, part, k, metric=faiss.METRIC_INNER_PRODUCT), offset))
            continue
        local = rows[(rows >= offset) & (rows < offset + len(part))] - offset
        if not len(local):
            continue
        if len(queries) <= IN_PLACE_QUERIES:
            found.append(_shifted(*_knn_by_row(queries, part, local, k), offset))
            continue
        for start in range(0, len(local), BLOCK_ROWS):
            block = local[start : start + BLOCK_ROWS]
            scores, within = faiss.knn(queries, part[block], k, metric=faiss.METRIC_INNER_PRODUCT)
            found.append(_shifted(scores, np.where(within >= 0, block[np.maximum(within, 0)], -1), offset))
    return merge(found, k, len(queries))


def rerank(vectors: VectorRows, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows): each query's own candidate rows (-1 for none) scored exactly, best k first."""
    queries = _as_queries(queries)
    found = []
    for offset, part in vectors.parts():
        inside = (candidates >= offset) & (candidates < offset + len(part))
        if not inside.any():
            continue
        # Ascending per query, the others last as -1 (FAISS stops at the first -1): of equal scores
        # the lowest rows are kept, as in `top_k`.
        local = np.sort(np.where(inside, candidates - offset, _NO_ROW), axis=1)
        local[local == _NO_ROW] = -1
        found.append(_shifted(*_knn_by_row(queries, part, local, k), offset))
    return merge(found, k, len(queries))


def merge(results: Sequence[tuple[np.ndarray, np.ndarray]], k: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """The best k of several (scores, rows) results for the same `queries` queries, in the one order.

    Each result is FAISS's best k of its rows; only those few per query meet here. Not FAISS's
    `ResultHeap`: its heapify and reorder open an OpenMP region even for one query, which on a
    busy machine waits a scheduler tick for the other threads (9 ms at p99 here, for 10 rows)."""
    if not results:
        scores, rows = np.full((queries, k), -np.inf, np.float32), np.full((queries, k), -1, np.int64)
        return scores, rows
    scores, rows = ordered(
        np.concatenate([r[0] for r in results], axis=1), np.concatenate([r[1] for r in results], axis=1)
    )
    if rows.shape[1] >= k:
        return scores[:, :k], rows[:, :k]
    short = k - rows.shape[1]  # fewer candidates than k (a merge of short pages)
    return (
        np.pad(scores, ((0, 0), (0, short)), constant_values=-np.inf),
        np.pad(rows, ((0, 0), (0, short)), constant_values=-1),
    )


def ordered(scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Results in the one order: best first, equal scores by row, padding (row -1, score -inf) last.

    FAISS orders equal scores by descending id and pads with -FLT_MAX; this makes every path agree."""
    scores = np.where(rows >= 0, scores, -np.inf).astype(np.float32)
    order = np.lexsort((rows, -scores), axis=-1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def _knn_by_row(queries: np.ndarray, part: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k among rows of `part`, read in place: `rows` 1-D (the same for every query) or one line
    per query (ascending, -1 after the last)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    scores = np.empty((len(queries), k), np.float32)
    found = np.empty((len(queries), k), np.int64)
    per_query = rows.shape[-1] if rows.ndim == 2 else 0
    faiss.knn_inner_products_by_idx(
        faiss.swig_ptr(queries),
        faiss.swig_ptr(part),
        faiss.swig_ptr(rows),
        part.shape[1],
        len(queries),
        len(part),
        rows.shape[-1],
        k,
        faiss.swig_ptr(scores),
        faiss.swig_ptr(found),
        per_query,
    )
    return scores, found


def _shifted(scores: np.ndarray, rows: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """A part's result in the rows of the whole (rows -1 stay -1)."""
    return scores, np.where(rows >= 0, rows + offset, -1)


def _as_queries(queries: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)

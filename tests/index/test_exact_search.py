"""FAISS's exact scans and re-ranking (`index.exact`) against a NumPy brute force: the same ids,
scores and order, equal scores by row, with filters, deleted rows, vectors split between a saved
(memory-mapped) base and rows added since, in memory or spilled to a file."""

from __future__ import annotations

import numpy as np
import pytest

from index import exact
from index.columns import VectorRows
from index.engines import EngineSpec
from index.filters import ItemAttributes, SearchFilter
from index.persistence import load_index, save_index
from index.vector_index import VectorIndex

DIM = 24
TOLERANCE = 1e-5


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(
    queries: np.ndarray, vectors: np.ndarray, k: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the top k+1 allowed rows by float64 score, equal scores by row; rows -1 and
    scores -inf pad. Row by row sums, so identical vectors score identically."""
    scores = (vectors.astype(np.float64)[None, :, :] * queries.astype(np.float64)[:, None, :]).sum(axis=2)
    scores[:, ~allowed] = -np.inf
    rows = np.broadcast_to(np.arange(len(vectors)), scores.shape)
    order = np.lexsort((rows, -scores), axis=1)[:, : k + 1]
    top_scores, top_rows = np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)
    top_rows = np.where(np.isfinite(top_scores), top_rows, -1)
    if top_rows.shape[1] < k + 1:  # fewer rows than k + 1
        pad = k + 1 - top_rows.shape[1]
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        top_rows = np.pad(top_rows, ((0, 0), (0, pad)), constant_values=-1)
    return top_scores, top_rows


def _assert_same(got: tuple[np.ndarray, np.ndarray], expected: tuple[np.ndarray, np.ndarray], k: int) -> None:
    """Same scores; same rows wherever the expected score stands apart from its neighbours (a float32
    near-tie may swap two rows, an exact tie may not: identical vectors must come by row)."""
    scores, rows = got
    want_scores, want_rows = expected
    assert scores.shape == rows.shape == (len(want_rows), k)
    np.testing.assert_allclose(scores, want_scores[:, :k], atol=TOLERANCE)
    assert (rows[~np.isfinite(want_scores[:, :k])] == -1).all() and np.isneginf(scores[rows < 0]).all()
    with np.errstate(invalid="ignore"):  # -inf next to -inf: padding, not a tie
        gaps = np.abs(np.diff(want_scores, axis=1))
    gaps = np.where(np.isnan(gaps), np.inf, gaps)
    apart = np.ones((len(rows), k), dtype=bool)
    apart[:, 1:] &= (gaps[:, : k - 1] > TOLERANCE) | (gaps[:, : k - 1] == 0)
    apart &= (gaps[:, :k] > TOLERANCE) | (gaps[:, :k] == 0)
    np.testing.assert_array_equal(rows[apart], want_rows[:, :k][apart])


@pytest.fixture(scope="module")
def split_rows(tmp_path_factory) -> tuple[VectorRows, np.ndarray, np.ndarray]:
    """3,000 rows: 2,000 in a memory-mapped base, 1,000 in a spill file; rows 10-17 and 2,500-2,503
    all hold the same vector (exact ties across both parts). Returns (rows, all vectors, queries)."""
    rng = np.random.default_rng(7)
    vectors = _unit(rng, 3000)
    vectors[[*range(10, 18), *range(2500, 2504)]] = vectors[10]
    folder = tmp_path_factory.mktemp("rows")
    np.save(folder / "base.npy", vectors[:2000])
    base = np.load(folder / "base.npy", mmap_mode="r")
    rows = VectorRows(DIM, base=base, spill_path=folder / "spill.f32")
    rows.extend(vectors[2000:])
    queries = np.concatenate([vectors[[10]], _unit(rng, 29)])  # the first query ties rows 10-17, 2500-2503
    return rows, vectors, queries


@pytest.mark.parametrize("queries_taken", [1, 3, 30])  # in place (one pass per query) and gathered blocks
@pytest.mark.parametrize("subset", ["all", "every third", "ties cut at k", "fewer than k"])
def test_top_k_matches_brute_force(split_rows, queries_taken, subset):
    vectors_rows, vectors, queries = split_rows
    queries = queries[:queries_taken]
    allowed = {
        "all": np.ones(3000, bool),
        "every third": np.arange(3000) % 3 == 1,
        "ties cut at k": np.isin(np.arange(3000), [*range(5, 40), *range(2400, 2600)]),
        "fewer than k": np.isin(np.arange(3000), [12, 2501, 7]),
    }[subset]
    k = 10
    rows = None if subset == "all" else np.flatnonzero(allowed)
    _assert_same(exact.top_k(vectors_rows, queries, k, rows), _brute_force(queries, vectors, k, allowed), k)


def test_equal_scores_keep_and_list_the_oldest_rows_first(split_rows):
    vectors_rows, _, queries = split_rows
    for k in (4, 12, 15):  # cut inside the base's copies, at the spill's, past them
        for rows in (None, np.arange(3000)):
            scores, found = exact.top_k(vectors_rows, queries[:1], k, rows)
            expected = [*range(10, 18), *range(2500, 2504)][:k]
            assert found[0, : len(expected)].tolist() == expected
            assert len(set(scores[0, : len(expected)].tolist())) == 1


def test_rerank_scores_each_querys_own_candidates(split_rows):
    vectors_rows, vectors, queries = split_rows
    rng = np.random.default_rng(1)
    ties = [2503, 17, 2500, 11, 16, 2502, 10, 12, 2501, 13, 15, 14]  # shuffled
    others = np.setdiff1d(np.arange(3000), ties)
    candidates = np.stack([rng.choice(others, size=40, replace=False) for _ in queries])
    candidates[:, 30:] = -1  # a short engine page
    candidates[0, :12] = ties
    candidates[1, 5] = -1  # a hole in the middle counts as no candidate, not the end of the list
    k = 8
    scores, rows = exact.rerank(vectors_rows, queries, candidates, k)
    for q in range(len(queries)):
        allowed = np.zeros(3000, bool)
        allowed[candidates[q][candidates[q] >= 0]] = True
        _assert_same((scores[q : q + 1], rows[q : q + 1]), _brute_force(queries[q : q + 1], vectors, k, allowed), k)
    assert rows[0].tolist() == [10, 11, 12, 13, 14, 15, 16, 17]


def test_merge_keeps_the_best_of_each_and_orders_ties_by_row():
    a = (np.array([[0.9, 0.5, -np.inf]], np.float32), np.array([[7, 3, -1]]))
    b = (np.array([[0.5, 0.95]], np.float32), np.array([[1, 4]]))
    scores, rows = exact.merge([a, b], 4, 1)
    assert rows.tolist() == [[4, 7, 1, 3]] and scores.tolist()[0][:2] == pytest.approx([0.95, 0.9])
    scores, rows = exact.merge([a], 4, 1)
    assert rows.tolist() == [[7, 3, -1, -1]] and np.isneginf(scores[0, 2:]).all()
    scores, rows = exact.merge([], 2, 3)
    assert rows.tolist() == [[-1, -1]] * 3 and np.isneginf(scores).all()


# ---- through VectorIndex: every search path against the brute force -------------------------------------


def _attributes(n: int) -> list[ItemAttributes]:
    return [ItemAttributes(price=float(i % 100), category=f"c{i % 50}", vendor=f"v{i % 3}") for i in range(n)]


FILTERS = {
    "none": (SearchFilter(), lambda n: np.ones(n, bool)),
    "1 in 50 (exact scan)": (SearchFilter.of(categories=["c7"]), lambda n: np.arange(n) % 50 == 7),
    "1 in 3 (engine, bitmap)": (SearchFilter.of(vendors=["v1"]), lambda n: np.arange(n) % 3 == 1),
    "prices under 40": (SearchFilter.of(max_price=39), lambda n: np.arange(n) % 100 < 40),
}


@pytest.fixture(scope="module", params=["flat", "ivf-sq8"])
def saved_and_updated(request, tmp_path_factory):
    """An index saved and loaded (vectors memory-mapped), then changed: deletions, upserts (new rows
    in memory after the base), and ten new copies of one vector. Returns (index, vectors by row, ids
    by row, live mask by row, queries)."""
    rng = np.random.default_rng(3)
    n = 6000
    vectors = _unit(rng, n)
    vectors[100:105] = vectors[100]
    spec = EngineSpec() if request.param == "flat" else EngineSpec("ivf-sq8", nlist=32, nprobe=32)
    index = VectorIndex(DIM, "m@1", spec, exact_scan_bytes=200 * DIM * 4)
    index.add(np.arange(n) + 10**9, vectors, _attributes(n))
    folder = tmp_path_factory.mktemp("saved")
    save_index(index, folder)
    index = load_index(folder)
    ids = np.arange(n) + 10**9
    alive = np.ones(n, bool)
    gone = np.setdiff1d(rng.choice(n, size=300, replace=False), np.arange(100, 105))
    index.delete(ids[gone])
    alive[gone] = False
    moved = np.setdiff1d(rng.choice(n, size=200, replace=False), [*gone, *range(100, 105)])
    fresh = _unit(rng, len(moved))
    index.upsert(ids[moved], fresh, [_attributes(n)[i] for i in moved])
    alive[moved] = False
    copies = np.repeat(vectors[[100]], 10, axis=0)
    all_vectors = np.concatenate([vectors, fresh, copies])
    all_ids = np.concatenate([ids, ids[moved], np.arange(10) + 2 * 10**9])
    index.add(all_ids[-10:], copies, _attributes(10))
    live = np.concatenate([alive, np.ones(len(moved) + 10, bool)])
    attributes = _attributes(n) + [_attributes(n)[i] for i in moved] + _attributes(10)
    queries = np.concatenate([vectors[[100]], _unit(rng, 19)])
    return request.param, index, all_vectors, all_ids, live, attributes, queries


@pytest.mark.parametrize("case", list(FILTERS))
@pytest.mark.parametrize("batch", [False, True])
def test_index_search_matches_brute_force_after_updates(saved_and_updated, case, batch):
    kind, index, vectors, ids, live, _, queries = saved_and_updated
    search_filter, make_mask = FILTERS[case]
    first = make_mask(6000)  # an upserted row keeps its id's attributes; the copies have rows 0-9's
    allowed = live & np.concatenate([first, first[_moved_rows(ids)], make_mask(10)])
    k = 10
    if batch:
        result = index.search(queries, k, search_filter)
        got_scores, got_ids = result.scores, result.ids
    else:
        results = [index.search(q, k, search_filter) for q in queries]
        got_scores, got_ids = np.concatenate([r.scores for r in results]), np.concatenate([r.ids for r in results])
    want_scores, want_rows = _brute_force(queries, vectors, k, allowed)
    want_ids = np.where(want_rows >= 0, ids[np.maximum(want_rows, 0)], -1)
    if kind == "flat" or case == "1 in 50 (exact scan)":
        _assert_same((got_scores, got_ids), (want_scores, want_ids), k)
    else:  # an inverted file finds (almost) all; what it returns is scored and ordered exactly
        recall = np.mean([len(set(g) & set(w)) / k for g, w in zip(got_ids, want_ids[:, :k], strict=True)])
        assert recall >= 0.95
        by_id = dict(zip(ids[live].tolist(), np.flatnonzero(live).tolist(), strict=True))
        for q in range(len(queries)):
            rows = [by_id[i] for i in got_ids[q].tolist()]
            assert allowed[rows].all()
            np.testing.assert_allclose(got_scores[q], vectors[rows] @ queries[q], atol=TOLERANCE)
            assert (np.diff(got_scores[q]) <= 0).all()
    # the first query's copies: the oldest rows first, whichever path answered
    copies_first = [i for i in got_ids[0].tolist() if i in _copy_ids(ids)]
    assert copies_first == sorted(copies_first, key=lambda i: int(np.flatnonzero(ids == i)[-1]))


def _moved_rows(ids: np.ndarray) -> np.ndarray:
    """Row (in the first 6,000) of each upserted id, in the order its new row was appended."""
    return ids[6000:-10] - 10**9


def _copy_ids(ids: np.ndarray) -> set[int]:
    return {*ids[100:105].tolist(), *ids[-10:].tolist()}


def test_the_copies_tie_break_by_row_on_every_path(saved_and_updated):
    kind, index, _, ids, _, _, queries = saved_and_updated
    copies = [*ids[100:105].tolist(), *ids[-10:].tolist()]
    for search_filter in (None, SearchFilter.of(vendors=["v1", "v0", "v2"]), SearchFilter.of(exclude_ids=[copies[2]])):
        result = index.search(queries[0], 6, search_filter)
        expected = [c for c in copies if not (search_filter and c in search_filter.exclude_ids)][:6]
        assert result.ids[0].tolist() == expected, (kind, search_filter)
        assert len(set(result.scores[0].tolist())) == 1

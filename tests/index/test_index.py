"""The vector index: ids, upserts, deletes, filtered search against brute force, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from benchmarks.index_search import generate
from index.engines import EngineSpec
from index.errors import IndexMismatch
from index.filters import ItemAttributes, SearchFilter
from index.id_map import IdMap
from index.vector_index import VectorIndex

DIM = 32
N = 60_000
SPECS = {"flat": EngineSpec("flat"), "ivf-sq8": EngineSpec("ivf-sq8", nlist=256, nprobe=16)}
#: Small enough that only the rarest filters take the exact scan, so both strategies are exercised.
EXACT_SCAN_BYTES = 200 * DIM * 4


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    """Clustered vectors (the benchmark's generator, small) and their attributes."""
    centres = np.random.default_rng(0).standard_normal((500, DIM), dtype=np.float32)
    vectors = np.concatenate(list(generate(N, DIM, 1, centres)))
    queries = np.concatenate(list(generate(40, DIM, 2, centres)))
    rng = np.random.default_rng(3)
    ids = rng.choice(10**12, size=N, replace=False).astype(np.int64)  # arbitrary int64 ids
    category = rng.integers(0, 1000, N)  # each category ~0.1% of items
    price = np.where(rng.random(N) < 0.05, np.nan, rng.uniform(0, 500, N)).astype(np.float32)
    vendor = rng.integers(0, 4, N)
    stock = rng.random(N) < 0.7
    attributes = [
        ItemAttributes(price=float(p), category=f"cat{c}", vendor=f"vendor{v}", in_stock=bool(s))
        for p, c, v, s in zip(price, category, vendor, stock, strict=True)
    ]
    return {
        "vectors": vectors,
        "queries": queries,
        "ids": ids,
        "category": category,
        "price": price,
        "vendor": vendor,
        "stock": stock,
        "attributes": attributes,
    }


@pytest.fixture(scope="module", params=list(SPECS))
def built(request, data):
    index = VectorIndex(DIM, "test-model@1", SPECS[request.param], exact_scan_bytes=EXACT_SCAN_BYTES)
    index.add(data["ids"], data["vectors"], data["attributes"])
    return request.param, index


def _brute_force(data, mask: np.ndarray, k: int) -> list[list[int]]:
    scores = data["queries"] @ data["vectors"].T
    scores[:, ~mask] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :k]
    return [[int(data["ids"][j]) for j in row if np.isfinite(scores[q, j])] for q, row in enumerate(top)]


def _overlap(result, expected: list[list[int]]) -> float:
    hits = [
        len(set(result.ids[q][result.ids[q] >= 0].tolist()) & set(e)) / max(len(e), 1) for q, e in enumerate(expected)
    ]
    return float(np.mean(hits))


CASES = {
    "none": (SearchFilter(), lambda d: np.ones(N, bool)),
    "in stock, vendor1": (
        SearchFilter.of(in_stock=True, vendors=["vendor1"]),
        lambda d: d["stock"] & (d["vendor"] == 1),
    ),
    "price 100-150": (
        SearchFilter.of(min_price=100, max_price=150),
        lambda d: (d["price"] >= 100) & (d["price"] <= 150),
    ),
    "1% (ten categories)": (SearchFilter.of(categories=[f"cat{c}" for c in range(10)]), lambda d: d["category"] < 10),
    "0.1% (one category)": (SearchFilter.of(categories=["cat7"]), lambda d: d["category"] == 7),
    "0.1% and in stock": (
        SearchFilter.of(categories=["cat7"], in_stock=True),
        lambda d: (d["category"] == 7) & d["stock"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_filtered_search_matches_brute_force_with_full_pages(built, data, case):
    kind, index = built
    search_filter, make_mask = CASES[case]
    mask = make_mask(data)
    k = 10
    result = index.search(data["queries"], k, search_filter)
    expected = _brute_force(data, mask, k)
    allowed_ids = set(data["ids"][mask].tolist())
    for q in range(len(data["queries"])):
        got = result.ids[q][result.ids[q] >= 0]
        assert len(got) == min(k, int(mask.sum())), (case, q)  # full pages whenever k items match
        assert set(got.tolist()) <= allowed_ids
        assert np.all(np.diff(result.scores[q][: len(got)]) <= 1e-6)  # best first
    overlap = _overlap(result, expected)
    assert overlap == 1.0 if kind == "flat" else overlap >= 0.9, overlap


def test_scores_are_true_cosines(built, data):
    _, index = built
    result = index.search(data["queries"][:5], 5)
    by_id = dict(zip(data["ids"].tolist(), range(N), strict=True))
    for q in range(5):
        for item_id, score in result.hits(q):
            assert score == pytest.approx(float(data["queries"][q] @ data["vectors"][by_id[item_id]]), abs=1e-5)


def test_filters_on_prices_unknown_names_and_exclusions(data):
    index = VectorIndex(DIM, "m", EngineSpec("flat"))
    index.add(data["ids"][:2000], data["vectors"][:2000], data["attributes"][:2000])
    assert index.search(data["queries"][0], 10, SearchFilter.of(categories=["no-such-category"])).hits() == []
    priced = index.search(data["queries"][0], 2000, SearchFilter.of(min_price=0))
    assert len(priced.hits()) == int(np.isfinite(data["price"][:2000]).sum())  # unknown prices drop out
    top = [i for i, _ in index.search(data["queries"][0], 5).hits()]
    without = [i for i, _ in index.search(data["queries"][0], 5, SearchFilter.of(exclude_ids=top[:3])).hits()]
    assert not set(top[:3]) & set(without) and without[:2] == top[3:5]
    with pytest.raises(ValueError, match="above max_price"):
        SearchFilter.of(min_price=10, max_price=5)
    with pytest.raises(ValueError, match="finite"):
        SearchFilter.of(max_price=float("nan"))


@pytest.mark.parametrize("kind", list(SPECS))
def test_add_upsert_delete_count_contains(data, kind):
    index = VectorIndex(DIM, "m", SPECS[kind])
    ids, vectors = data["ids"][:20_000], data["vectors"][:20_000]
    index.add(ids, vectors)
    assert len(index) == 20_000 and ids[5] in index and 12345 not in index
    with pytest.raises(ValueError, match="already in the index"):
        index.add(ids[:3], vectors[:3])
    assert index.delete([ids[0], ids[1], 777]) == 2
    assert len(index) == 19_998 and ids[0] not in index
    hits = [i for i, _ in index.search(vectors[0], 5).hits()]
    assert ids[0] not in hits
    # Upsert moves an id: searching for its new vector finds it, the old spot no longer does.
    index.upsert([ids[2]], vectors[[3000]])
    assert len(index) == 19_998
    best_id, best_score = index.search(vectors[3000], 2).hits()[0]
    assert {best_id, index.search(vectors[3000], 2).hits()[1][0]} == {ids[2], ids[3000]}
    assert best_score == pytest.approx(1.0, abs=1e-5)
    assert ids[2] not in [i for i, _ in index.search(vectors[2], 3).hits()]
    np.testing.assert_array_equal(index.vector_of(int(ids[2])), vectors[3000])
    # Upsert of a deleted id brings it back; rows accumulate until compaction.
    index.upsert([ids[0]], vectors[[0]])
    assert ids[0] in index and index.rows == 20_002
    before = index.search(data["queries"], 10)
    index.compact()
    assert index.rows == len(index) == 19_999
    after = index.search(data["queries"], 10)
    np.testing.assert_array_equal(before.ids, after.ids)


def test_refuses_wrong_vectors(data):
    index = VectorIndex(DIM, "m")
    with pytest.raises(IndexMismatch, match="dimension 32"):
        index.add([1], np.ones((1, DIM + 1), np.float32) / np.sqrt(DIM + 1))
    with pytest.raises(ValueError, match="L2-normalised"):
        index.add([1], np.ones((1, DIM), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        index.add([1], np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(ValueError, match="twice"):
        index.add([1, 1], data["vectors"][:2])
    with pytest.raises(IndexMismatch):
        index.search(np.ones(DIM + 2, np.float32), 3)
    assert index.search(data["queries"][0], 3).hits() == []  # empty index: empty page, no error


def test_untrained_inverted_file_searches_exactly_until_it_trains(data):
    index = VectorIndex(DIM, "m", EngineSpec("ivf-sq8", nlist=256))
    index.add(data["ids"][:1000], data["vectors"][:1000])  # far too few rows to train 256 lists
    assert index._engine.ntotal == 0
    result = index.search(data["queries"], 10)
    mask = np.zeros(N, bool)
    mask[:1000] = True
    assert _overlap(result, _brute_force(data, mask, 10)) == 1.0
    index.add(data["ids"][1000:], data["vectors"][1000:])
    assert index._engine.ntotal == N  # trained and fed once enough rows arrived


def test_strategy_follows_selectivity(built, data, monkeypatch):
    """Rare filters scan the allowed rows exactly; common ones go through FAISS with a bitmap."""
    _, index = built
    calls = {"exact": 0, "faiss": 0}
    exact, engine_search = index._exact, index._engine.search

    def counting_exact(*args, **kwargs):
        calls["exact"] += 1
        return exact(*args, **kwargs)

    def counting_faiss(*args, **kwargs):
        calls["faiss"] += 1
        return engine_search(*args, **kwargs)

    monkeypatch.setattr(index, "_exact", counting_exact)
    monkeypatch.setattr(index._engine, "search", counting_faiss)
    index.search(data["queries"][:3], 10, SearchFilter.of(categories=["cat7"]))  # ~60 rows
    assert calls == {"exact": 1, "faiss": 0}
    index.search(data["queries"][:3], 10, SearchFilter.of(in_stock=True))  # ~70% of rows
    assert calls == {"exact": 1, "faiss": 1}


def test_concurrent_searches_never_see_ids_deleted_before_they_started(data):
    index = VectorIndex(DIM, "m", SPECS["ivf-sq8"])
    index.add(data["ids"], data["vectors"], data["attributes"])
    deleted_log: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    rng = np.random.default_rng(11)
    victims = rng.choice(data["ids"], size=6000, replace=False).reshape(60, 100)
    movers = rng.choice(np.setdiff1d(data["ids"], victims.ravel()), size=6000, replace=False).reshape(60, 100)

    def writer() -> None:
        try:
            for gone, moved in zip(victims, movers, strict=True):
                index.delete(gone)
                deleted_log.extend(gone.tolist())
                index.upsert(moved, data["vectors"][rng.integers(0, N, len(moved))])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader(seed: int) -> None:
        local = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                known_deleted = set(deleted_log)  # every one of these deletes completed already
                search_filter = SearchFilter.of(in_stock=True) if local.random() < 0.5 else None
                result = index.search(data["queries"][local.integers(0, 40, 4)], 20, search_filter)
                assert not known_deleted & set(result.ids.ravel().tolist())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:1]
    assert len(index) == N - 6000
    final = index.search(data["queries"], 50)
    assert not set(victims.ravel().tolist()) & set(final.ids.ravel().tolist())


def test_id_map_lookups_survive_merges():
    ids = np.arange(0, 300_000, 3, dtype=np.int64)
    id_map = IdMap(ids[:1000], np.arange(1000))
    id_map.set(ids[1000:], np.arange(1000, len(ids)))  # large enough to trigger merges
    assert len(id_map) == len(ids)
    np.testing.assert_array_equal(id_map.rows_of(ids[[0, 5000, -1]]), [0, 5000, len(ids) - 1])
    assert id_map.rows_of(np.array([1, 2]))[0] == -1
    removed = id_map.remove(np.array([ids[10], 4]))
    assert removed.tolist() == [10, -1] and len(id_map) == len(ids) - 1
    id_map.set(np.array([ids[10]]), np.array([999_999]))
    assert id_map.rows_of(np.array([ids[10]]))[0] == 999_999
    all_ids, _ = id_map.items()
    assert len(all_ids) == len(ids) and (np.diff(all_ids) > 0).all()

"""`SearchFilter.allow`: only ids whose key is listed, with full pages on every search path."""

from __future__ import annotations

import numpy as np
import pytest

from index.engines import EngineSpec
from index.filters import AllowList, SearchFilter
from index.vector_index import VectorIndex

DIM = 16
GROUPS = 6_000
PER_GROUP = 3  # vectors per group, like a product's images
VIEW_FLAG = 1 << 62
SPECS = {"flat": EngineSpec("flat"), "ivf-sq8": EngineSpec("ivf-sq8", nlist=64, nprobe=16)}


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(1, GROUPS + 1, dtype=np.int64) * 1009, PER_GROUP)
    position = np.tile(np.arange(PER_GROUP, dtype=np.int64), GROUPS)
    ids = (groups << 4) | position
    ids[position == PER_GROUP - 1] |= VIEW_FLAG  # the last vector of each group looks like a customer view
    vectors = _unit(rng.standard_normal((len(ids), DIM)).astype(np.float32))
    queries = _unit(rng.standard_normal((12, DIM)).astype(np.float32))
    return ids, groups, vectors, queries


@pytest.fixture(scope="module", params=list(SPECS), ids=list(SPECS))
def index(request, data):
    ids, _, vectors, _ = data
    built = VectorIndex(DIM, "m@1", SPECS[request.param], exact_scan_bytes=300 * DIM * 4)
    built.add(ids, vectors)
    return built


def _brute_force(data, allowed_groups: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    ids, groups, vectors, _ = data
    keep = np.isin(groups, allowed_groups)
    scores = vectors[keep] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[keep][order].tolist()


@pytest.mark.parametrize("share", [0.01, 0.3], ids=["rare: exact scan", "common: FAISS with a bitmap"])
def test_only_listed_groups_come_back_in_full_pages(index, data, share: float) -> None:
    _, groups, _, queries = data
    rng = np.random.default_rng(11)
    chosen = rng.choice(np.unique(groups), size=int(GROUPS * share), replace=False)
    allow = AllowList.of(chosen, shift=4, bits=58)
    result = index.search(queries, 20, SearchFilter(allow=allow))
    assert (result.ids >= 0).all(), "every page is full"
    assert np.isin((result.ids >> 4) & ((1 << 58) - 1), chosen).all()
    agree = [
        len(set(result.ids[q].tolist()) & set(_brute_force(data, chosen, queries[q], 20))) / 20
        for q in range(len(queries))
    ]
    assert np.mean(agree) >= (1.0 if index.spec.exact else 0.9)


def test_plain_ids_and_the_empty_list(index, data) -> None:
    ids, _, _, queries = data
    wanted = ids[[5, 50, 500]]
    found = index.search(queries[0], 10, SearchFilter(allow=AllowList.of(wanted.tolist())))
    assert {i for i, _ in found.hits(0)} == set(wanted.tolist())
    nothing = index.search(queries[0], 10, SearchFilter(allow=AllowList.of([])))
    assert nothing.hits(0) == []


def test_allow_list_combines_with_exclusions_and_sees_writes(data) -> None:
    ids, _, vectors, queries = data
    index = VectorIndex(DIM, "m@1", EngineSpec("flat"))
    index.add(ids[:30], vectors[:30])
    group = 1009 * 2  # ids[3:6]
    allow = AllowList.of([group], shift=4, bits=58)
    first = index.search(queries[0], 10, SearchFilter(allow=allow, exclude_ids=frozenset({int(ids[3])})))
    assert {i for i, _ in first.hits(0)} == {int(ids[4]), int(ids[5])}
    new_id = (group << 4) | 9  # a vector of the same group added later: the cached keys are rebuilt
    index.upsert([new_id], vectors[:1])
    second = index.search(queries[0], 10, SearchFilter(allow=allow))
    assert {i for i, _ in second.hits(0)} == {int(ids[3]), int(ids[4]), int(ids[5]), new_id}
    index.delete([int(ids[4])])
    third = index.search(queries[0], 10, SearchFilter(allow=allow))
    assert int(ids[4]) not in {i for i, _ in third.hits(0)}


def test_allow_list_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="shift"):
        AllowList.of([1], shift=70)
    assert not SearchFilter(allow=AllowList.of([])).is_empty
    assert list(AllowList.of([3, 1, 3]).keys) == [1, 3]


def test_a_subset_of_a_universe_equals_the_plain_list(index, data) -> None:
    _, groups, _, queries = data
    universe = np.unique(np.concatenate([groups, [7, 11]]))  # keys the index does not hold are ignored
    rng = np.random.default_rng(5)
    for share in (0.02, 0.5):
        chosen = rng.random(len(universe)) < share
        subset = AllowList.subset(universe, chosen, shift=4, bits=58)
        plain = AllowList.of(universe[chosen], shift=4, bits=58)
        a = index.search(queries, 10, SearchFilter(allow=subset))
        b = index.search(queries, 10, SearchFilter(allow=plain))
        np.testing.assert_array_equal(a.ids, b.ids)
        assert (a.ids >= 0).all()
    with pytest.raises(ValueError, match="universe"):
        AllowList.subset(universe, chosen[:-1])


def test_the_universe_cache_follows_writes(data) -> None:
    ids, groups, vectors, queries = data
    index = VectorIndex(DIM, "m@1", EngineSpec("flat"))
    index.add(ids[:30], vectors[:30])
    universe = np.unique(groups[:30])
    only_third = universe == groups[6]
    before = index.search(queries[0], 10, SearchFilter(allow=AllowList.subset(universe, only_third, 4, 58)))
    assert {i for i, _ in before.hits(0)} == set(ids[6:9].tolist())
    index.delete(ids[6:9].tolist())
    index.add(ids[30:33], vectors[30:33])
    after = index.search(queries[0], 10, SearchFilter(allow=AllowList.subset(universe, only_third, 4, 58)))
    assert after.hits(0) == []

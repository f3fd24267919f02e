"""`IdMap`, the one sorted id → row map: against a plain dict, through merges, as positions over
sorted ids (the vector store's lookup), and the vector store's lookups that go through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.filters import ItemAttributes
from index.id_map import IdMap
from index.vector_store import VectorStore


def _expected(reference: dict[int, int], ids: np.ndarray) -> np.ndarray:
    return np.asarray([reference.get(int(i), -1) for i in ids], dtype=np.int64)


@pytest.mark.parametrize("merge_at", [7, 100, 65_536])
def test_lookups_agree_with_a_dict_through_sets_removals_and_merges(merge_at):
    rng = np.random.default_rng(merge_at)
    start = rng.choice(10**12, size=500, replace=False).astype(np.int64)
    id_map = IdMap(start, np.arange(500), merge_at=merge_at)
    reference = dict(zip(start.tolist(), range(500), strict=True))
    universe = np.concatenate([start, rng.choice(10**12, size=500, replace=False).astype(np.int64)])
    next_row = 500
    for step in range(60):
        chosen = np.unique(rng.choice(universe, size=int(rng.integers(1, 40))))
        if step % 3 == 2:
            removed = id_map.remove(chosen)
            np.testing.assert_array_equal(removed, _expected(reference, chosen))
            for i in chosen.tolist():
                reference.pop(i, None)
        else:
            rows = np.arange(next_row, next_row + len(chosen))
            next_row += len(chosen)
            id_map.set(chosen, rows)
            reference.update(zip(chosen.tolist(), rows.tolist(), strict=True))
        assert len(id_map) == len(reference)
        few, many = universe[rng.integers(0, len(universe), 5)], universe  # one dict lookup per id / sorted
        for probe in (few, many):
            expected = _expected(reference, probe)
            np.testing.assert_array_equal(id_map.rows_of(probe), expected)
            np.testing.assert_array_equal(id_map.contains(probe), expected >= 0)
        assert [id_map.row_of(int(i)) for i in few] == _expected(reference, few).tolist()
    ids, rows = id_map.items()
    assert ids.tolist() == sorted(reference) and rows.tolist() == [reference[i] for i in sorted(reference)]
    np.testing.assert_array_equal(id_map.rows_of(ids), rows)  # items() left the map as it was


def test_positions_look_up_sorted_ids_without_copying_them():
    ids = np.asarray([-5, 3, 10, 2**40], dtype=np.int64)
    positions = IdMap.positions(ids)
    assert positions._ids is ids  # the caller's array, not a copy
    np.testing.assert_array_equal(positions.rows_of(np.asarray([10, 4, -5, 2**40, 11])), [2, -1, 0, 3, -1])
    assert (
        len(positions) == 4
        and positions.row_of(3) == 1
        and positions.contains(np.asarray([3, 4])).tolist()
        == [
            True,
            False,
        ]
    )
    positions.set(np.asarray([4]), np.asarray([9]))  # changes work on positions too
    positions.remove(np.asarray([10]))
    assert positions.items()[0].tolist() == [-5, 3, 4, 2**40] and positions.items()[1].tolist() == [0, 1, 9, 3]
    assert len(IdMap.positions(np.empty(0, np.int64))) == 0
    with pytest.raises(ValueError, match="strictly increasing"):
        IdMap.positions(np.asarray([1, 1, 2]))
    with pytest.raises(ValueError, match="strictly increasing"):
        IdMap.positions(np.asarray([2, 1]))


def test_store_lookups_by_id_skip_tombstones_and_absent_ids(tmp_path: Path):
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    store = VectorStore(tmp_path, "m@1", 8)
    store.append(np.arange(0, 20) * 3, vectors[:20], [ItemAttributes()] * 20)
    store.append(np.arange(10, 30) * 3, vectors[20:40], [ItemAttributes()] * 20)  # ids 30..57 rewritten
    store.delete(np.asarray([0, 36, 87]))
    asked = np.asarray([87, 3, 30, 0, 36, 1, 57, 3])
    found, got = store.vectors_of(asked)
    assert found.tolist() == [False, True, True, False, False, False, True, True]
    np.testing.assert_array_equal(got[[1, 7]], vectors[[1, 1]])  # from the first file
    np.testing.assert_array_equal(got[2], vectors[20])  # the later row of id 30 wins
    np.testing.assert_array_equal(got[6], vectors[20 + 9])
    assert not got[~found].any()

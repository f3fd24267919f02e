"""`VersionWriter`, the one writer of the saved format: an index saved from memory and one streamed
from the vector store come out as the same files, those files are what `np.save` writes (so
versions saved before still load), and a writer that fails publishes nothing."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from index.build import build_from_store, save_from_store
from index.engines import EngineSpec
from index.filters import ItemAttributes
from index.persistence import (
    COLUMNS,
    CURRENT,
    MANIFEST,
    VECTORS_FILE,
    RowBlock,
    VersionWriter,
    load_index,
    read_manifest,
    save_index,
)
from index.planner import IndexPlan
from index.vector_index import VectorIndex
from index.vector_store import VectorStore

DIM = 16


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _attributes(start: int, n: int) -> list[ItemAttributes]:
    return [
        ItemAttributes(
            price=math.nan if i % 11 == 0 else float(i % 70),
            category=f"c{i % 9}",
            vendor=f"v{i % 4}",
            in_stock=i % 3 > 0,
        )
        for i in range(start, start + n)
    ]


def _version(directory: Path) -> Path:
    return directory / (directory / CURRENT).read_text().strip()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> VectorStore:
    """Three files, an upsert over the first and tombstones: the scan is not simply the appends."""
    rng = np.random.default_rng(5)
    store = VectorStore(tmp_path_factory.mktemp("store"), "m@1", DIM)
    for start in range(0, 6000, 2000):
        store.append(np.arange(start, start + 2000), _unit(rng, 2000), _attributes(start, 2000))
    store.append(np.arange(100, 300), _unit(rng, 200), _attributes(10_000, 200))
    store.delete(np.arange(0, 6000, 7))
    return store


@pytest.mark.parametrize("spec", [EngineSpec(), EngineSpec("ivf-sq8", nlist=16)], ids=["flat", "ivf-sq8"])
def test_an_index_saved_from_memory_and_one_streamed_from_the_store_are_the_same_files(tmp_path, store, spec):
    plan = IndexPlan(spec, True, 0, "")
    save_index(build_from_store(store, plan), tmp_path / "from-memory", extra={"store_segment": 5})
    save_from_store(store, plan, tmp_path / "streamed", extra={"store_segment": 5})
    held, streamed = _version(tmp_path / "from-memory"), _version(tmp_path / "streamed")
    names = {p.name for p in held.iterdir()} - {MANIFEST}
    if spec.exact:  # a flat index streamed from the store saves no FAISS file (loading rebuilds it)
        names.discard("engine.faiss")
    assert names <= {p.name for p in streamed.iterdir()}
    for name in sorted(names):
        assert (held / name).read_bytes() == (streamed / name).read_bytes(), name
    one, other = (json.loads((v / MANIFEST).read_text()) for v in (held, streamed))
    for manifest in (one, other):
        del manifest["saved_at"], manifest["files"]
    assert one == other and one["count"] == one["rows"] == store.count()


def test_column_files_are_what_np_save_writes_and_a_reloaded_index_saves_whole(tmp_path):
    """Byte for byte the format saved before the writer was shared (`np.save` of each column), for
    an index whose vectors are split between a memory-mapped base and rows added after loading."""
    rng = np.random.default_rng(8)
    index = VectorIndex(DIM, "m@1", EngineSpec("ivf-sq8", nlist=16))
    first = _unit(rng, 3000)
    index.add(np.arange(3000) * 2, first, _attributes(0, 3000))
    save_index(index, tmp_path)
    loaded = load_index(tmp_path)
    later = _unit(rng, 70)
    loaded.upsert(np.arange(70) * 2 + 1, later, _attributes(5000, 70))
    loaded.upsert([4], later[:1], _attributes(9000, 1))  # a row of the base dies
    loaded.delete([6])
    save_index(loaded, tmp_path)
    version = _version(tmp_path)
    with loaded.snapshot() as state:
        for name in COLUMNS:
            buffer = io.BytesIO()
            np.save(buffer, state.arrays[name], allow_pickle=False)
            assert (version / f"{name}.npy").read_bytes() == buffer.getvalue(), name
        buffer = io.BytesIO()
        np.save(buffer, state.vectors.slice(0), allow_pickle=False)
        assert (version / VECTORS_FILE).read_bytes() == buffer.getvalue()
    again = load_index(tmp_path)
    assert len(again) == 3000 + 70 - 1 and again.rows == 3000 + 71
    np.testing.assert_array_equal(again.vector_of(4), later[0])
    np.testing.assert_array_equal(again.vector_of(2 * 69 + 1), later[69])
    np.testing.assert_array_equal(again.vector_of(2 * 2999), first[2999])
    assert again.attributes_of(4) == _attributes(9000, 1)[0] and 6 not in again


def test_a_writer_that_fails_publishes_nothing(tmp_path):
    rng = np.random.default_rng(9)
    index = VectorIndex(DIM, "m@1")
    index.add(np.arange(50), _unit(rng, 50))
    before = save_index(index, tmp_path)
    columns = {name: np.zeros(3, dtype) for name, dtype in COLUMNS.items()}
    short = VersionWriter(tmp_path)
    with pytest.raises(ValueError, match="wrote 3 rows of 5"):
        short.write_rows(DIM, 5, [RowBlock(columns, _unit(rng, 3))])
    with pytest.raises(ValueError, match="does not fit"):
        VersionWriter(tmp_path).write_rows(DIM, 2, [RowBlock(columns, _unit(rng, 3))])
    with pytest.raises(ValueError, match="publish before write_rows"):
        VersionWriter(tmp_path).publish("m@1", EngineSpec(), 0)
    assert _version(tmp_path) == before and read_manifest(tmp_path)["count"] == 50
    assert len(load_index(tmp_path)) == 50
    save_index(index, tmp_path)  # the next save sweeps the unpublished folders
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]

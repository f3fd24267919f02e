"""`publish_index`: a small update to an inverted-file index extends the saved version (no
retraining); anything else is rebuilt from the vector store. Real store, real FAISS, real files."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

import index.planner as planner
from catalog.catalog_index import publish_index
from catalog.workspace import Workspace
from index.filters import ItemAttributes
from index.persistence import CURRENT, ENGINE_FILE, load_index
from index.vector_store import VectorStore

MODEL, DIM = "model@publish", 16


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def attributes(n: int, price: float = 10.0) -> list[ItemAttributes]:
    return [ItemAttributes(price=price, category="lamps", vendor="acme") for _ in range(n)]


def centroids(workspace: Workspace) -> np.ndarray:
    directory = workspace.index_dir(MODEL)
    engine = faiss.read_index(str(directory / (directory / CURRENT).read_text().strip() / ENGINE_FILE))
    ivf = faiss.extract_index_ivf(engine)
    return ivf.quantizer.reconstruct_n(0, ivf.nlist)


@pytest.fixture
def small_flat_limit(monkeypatch):
    """Inverted files from 1,000 vectors on, so a test catalog of a few thousand gets one."""
    monkeypatch.setattr(planner, "FLAT_MAX", 1000)


@pytest.fixture
def catalog(tmp_path: Path, small_flat_limit) -> tuple[Workspace, VectorStore, np.ndarray]:
    workspace = Workspace(tmp_path / "home")
    store = VectorStore(workspace.vectors_dir(MODEL), MODEL, DIM)
    vectors = unit_vectors(4000, seed=1)
    for start in range(0, 4000, 500):  # one file per ingest batch, as an ingest writes them
        store.append(np.arange(start, start + 500), vectors[start : start + 500], attributes(500))
    first = publish_index(workspace, MODEL, DIM)
    assert first["mode"] == "rebuilt" and first["index_type"] == "ivf-sq8" and first["count"] == 4000
    return workspace, store, vectors


def test_a_small_update_extends_the_saved_index_without_retraining(catalog):
    workspace, store, vectors = catalog
    trained = centroids(workspace)
    new = unit_vectors(100, seed=2)
    replaced = unit_vectors(50, seed=3)
    store.append(np.arange(4000, 4100), new, attributes(100))  # new products
    store.append(np.arange(0, 50), replaced, attributes(50))  # changed photos
    store.delete(np.arange(100, 130))  # removed products
    store.append(np.asarray([200]), vectors[200:201], attributes(1, price=99.5))  # a new price only

    outcome = publish_index(workspace, MODEL, DIM)

    assert outcome["mode"] == "updated" and outcome["count"] == 4000 + 100 - 30
    assert np.array_equal(centroids(workspace), trained)  # the lists were not retrained
    index = load_index(workspace.index_dir(MODEL), expected_model_id=MODEL)
    try:
        assert np.array_equal(index.ids(), np.sort(store.live_ids()))
        assert index.rows == 4000 + 100 + 50 + 1  # old rows of changed ids are dead, not rewritten
        assert index.search(new[7], 1).hits()[0][0] == 4007
        assert index.search(replaced[3], 1).hits()[0][0] == 3
        assert np.allclose(index.vector_of(3), replaced[3]) and np.allclose(index.vector_of(3999), vectors[3999])
        assert not index.contains(110)
        assert index.attributes_of(200).price == pytest.approx(99.5)
    finally:
        index.close()
    assert publish_index(workspace, MODEL, DIM)["mode"] == "unchanged"


def test_replaying_a_merged_tail_adds_no_dead_rows(catalog):
    """A tail merge can fold rows the saved index already has into the file it replays: those are
    recognised and skipped, so the index grows by what is new only."""
    workspace, store, _ = catalog
    for seed in range(3):  # three files after the base: the next publish merges them
        store.append(np.arange(5000 + 10 * seed, 5010 + 10 * seed), unit_vectors(10, 10 + seed), attributes(10))
    assert publish_index(workspace, MODEL, DIM)["mode"] == "updated"
    for seed in range(2):
        store.append(np.arange(6000 + 10 * seed, 6010 + 10 * seed), unit_vectors(10, 20 + seed), attributes(10))
    outcome = publish_index(workspace, MODEL, DIM)
    assert outcome["compaction"]["compacted"] and outcome["compaction"]["mode"] == "tail"
    assert outcome["mode"] == "updated" and outcome["count"] == 4050
    index = load_index(workspace.index_dir(MODEL))
    try:
        assert index.rows == 4050  # no row twice: the 30 rows replayed again were skipped
    finally:
        index.close()


def test_a_quarter_of_dead_rows_rebuilds_instead(catalog):
    workspace, store, _ = catalog
    store.delete(np.arange(0, 1200))
    outcome = publish_index(workspace, MODEL, DIM, compact="none")  # the store keeps its tombstones
    assert outcome["mode"] == "rebuilt" and outcome["count"] == 2800
    index = load_index(workspace.index_dir(MODEL))
    try:
        assert index.rows == index.count == 2800
    finally:
        index.close()


def test_outgrowing_the_lists_or_the_kind_rebuilds(catalog, monkeypatch):
    workspace, store, _ = catalog
    store.append(np.arange(10_000, 40_000), unit_vectors(30_000, seed=5), attributes(30_000))
    outcome = publish_index(workspace, MODEL, DIM, compact="none")  # 4,000 → 34,000: 4x the lists
    assert outcome["mode"] == "rebuilt" and outcome["count"] == 34_000
    monkeypatch.setattr(planner, "FLAT_MAX", 50_000)  # the same catalog now plans as flat
    store.append(np.asarray([50_000]), unit_vectors(1, seed=6), attributes(1))
    outcome = publish_index(workspace, MODEL, DIM, compact="none")
    assert outcome["mode"] == "rebuilt" and outcome["index_type"] == "flat" and outcome["count"] == 34_001


def test_a_flat_index_is_always_rebuilt(tmp_path: Path):
    workspace = Workspace(tmp_path / "home")
    store = VectorStore(workspace.vectors_dir(MODEL), MODEL, DIM)
    store.append(np.arange(100), unit_vectors(100, seed=7), attributes(100))
    assert publish_index(workspace, MODEL, DIM)["mode"] == "rebuilt"
    store.append(np.asarray([500]), unit_vectors(1, seed=8), attributes(1))
    outcome = publish_index(workspace, MODEL, DIM)
    assert outcome["mode"] == "rebuilt" and outcome["index_type"] == "flat" and outcome["count"] == 101


def test_a_damaged_saved_index_is_rebuilt_from_the_store(catalog):
    workspace, store, _ = catalog
    directory = workspace.index_dir(MODEL)
    version = directory / (directory / CURRENT).read_text().strip()
    with (version / "price.npy").open("r+b") as handle:  # flip bytes: the checksum no longer matches
        handle.seek(200)
        handle.write(b"\xff\xff\xff\xff")
    store.append(np.asarray([9000]), unit_vectors(1, seed=9), attributes(1))
    outcome = publish_index(workspace, MODEL, DIM)
    assert outcome["mode"] == "rebuilt" and outcome["count"] == 4001
    load_index(directory).close()  # the new version passes its checksums


def test_bench_publish_reports_both_ways_on_the_same_store(small_flat_limit):
    from benchmarks.publish import run_publish_bench

    result = run_publish_bench(3000, dim=16, update_share=0.05, queries=20, log=lambda _: None)
    assert result["index_type"] == "ivf-sq8" and result["update_mode"] == "updated"
    assert result["count"] == 3000 + 150 - 37
    assert result["rebuilt_publish_s"] > 0 and result["updated_publish_s"] > 0
    assert result["recall_at_10_updated"] > 0.5 and result["recall_at_10_rebuilt"] > 0.5

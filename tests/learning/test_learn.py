"""`vitrine learn`: promotion only of a measured improvement, rollback, crash safety, a serving process
following the switch, and the command end to end. Real catalog, index, ONNX and SQLite (test-tiny)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from catalogs import make_rows, product_photo, write_csv
from pair_photos import catalog_photo, look_photo, write_pairs
from search_catalog import build_workspace
from typer.testing import CliRunner

from catalog.catalog_index import CatalogIndex
from catalog.db import make_engine, session_factory
from catalog.ids import product_id, view_image_id
from catalog.product_search import search_products
from catalog.search_service import QueryInput, SearchService
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from cli.main import app
from index.filters import ItemAttributes
from index.vector_store import VectorStore
from learning import versions
from learning.learn import MIN_PAIRS, learn
from learning.versions import LearningError, read_pointer, rollback
from vision.adapter import project
from vision.embedder import open_embedder
from vision.model_store import ModelStore
from vision.onnx_embedder import OnnxEmbedder
from workflow.pairs_io import import_pairs
from workflow.settings import Settings

LOOKS = list(range(30))  # catalog rows whose customers photograph a "real look" (tests/pair_photos.py)


@pytest.fixture(scope="module")
def template(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with test-tiny exported and a 60-product catalog ingested (copied by each test)."""
    folder = tmp_path_factory.mktemp("learning-template")
    home = folder / "home"
    shutil.copytree(tiny[0], home / "models" / "test-tiny")
    build_workspace(folder, open_embedder("test-tiny", store=ModelStore(home)))
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """This test's own VITRINE_HOME: every command and model store of the test uses it."""
    target = tmp_path / "home"
    shutil.copytree(template, target)
    monkeypatch.setenv("VITRINE_HOME", str(target))
    return Workspace(target)


@pytest.fixture
def sessions(home: Workspace):
    engine = make_engine(home.database_url)
    yield session_factory(engine)
    engine.dispose()


def _import(home: Workspace, sessions, csv_path: Path) -> None:  # type: ignore[no-untyped-def]
    summary = import_pairs(csv_path, sessions, home, Settings.max_upload_bytes, Settings.max_upload_pixels)
    assert summary.imported and not summary.rejected, summary.to_json()


def _rank(home: Workspace, model: str, photo: bytes, sku: str) -> int:
    """Where the product `sku` ranks for `photo`, searched as `vitrine search` does with `model`."""
    embedder = open_embedder(model)
    vector = embedder.embed_images([_image(photo)])
    index = CatalogIndex(home, embedder.manifest.model_id, embedder.manifest.embed_dim)
    engine = make_engine(home.database_url)
    try:
        hits = search_products(index, session_factory(engine), vector, k=60)
    finally:
        index.close()
        engine.dispose()
    return next((n for n, h in enumerate(hits, 1) if h.sku == sku), 99)


def _image(data: bytes):  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")


def test_a_better_version_is_promoted_and_every_command_gets_it(home, sessions, tmp_path) -> None:
    store = ModelStore()
    _, base = store.resolve("test-tiny")
    _import(home, sessions, write_pairs(tmp_path / "pairs", "acme", LOOKS, 6))
    outcome = learn(home, sessions, "test-tiny")
    before, after = outcome["holdout"]["before"], outcome["holdout"]["after"]
    assert outcome["promoted"] is True and after["recall_at_1"] > before["recall_at_1"] + 0.2
    assert outcome["pairs"]["usable"] == 180 and outcome["pairs"]["holdout_photos"] == 36
    assert outcome["version"] == "test-tiny+pairs-1" and outcome["active"] == "test-tiny+pairs-1"
    _, version = store.resolve("test-tiny")
    assert version.model_id == outcome["model_id"] != base.model_id
    assert version.source["parent_model_id"] == base.model_id
    pointer = read_pointer(store, "test-tiny")
    assert pointer["stack"] == ["test-tiny", "test-tiny+pairs-1"] and pointer["history"][-1]["event"] == "promoted"
    old = VectorStore(home.vectors_dir(base.model_id), base.model_id, base.embed_dim)
    new = VectorStore(home.vectors_dir(version.model_id), version.model_id, version.embed_dim)
    np.testing.assert_array_equal(new.live_ids(), old.live_ids())
    found, vectors = new.vectors_of(old.live_ids()[:5])
    matrix = np.load(store.installed_dir("test-tiny+pairs-1") / "adapter.npy")
    assert found.all() and np.allclose(vectors, project(old.vectors_of(old.live_ids()[:5])[1], matrix), atol=1e-5)
    # Photos of the real look that learning never saw: the active version finds their products better.
    fresh = [(row, look_photo(row, 50)) for row in LOOKS[:12]]
    base_ranks = [_rank_with(home, base, p, r) for r, p in fresh]
    new_ranks = [_rank(home, "test-tiny", p, f"SKU-{r:05d}") for r, p in fresh]
    assert sum(r == 1 for r in new_ranks) > sum(r == 1 for r in base_ranks) + 3


def _rank_with(home: Workspace, manifest, photo: bytes, row: int) -> int:  # type: ignore[no-untyped-def]
    directory, _ = ModelStore().resolve(manifest.name, follow_active=False)
    embedder = OnnxEmbedder(directory, manifest)
    index = CatalogIndex(home, manifest.model_id, manifest.embed_dim)
    engine = make_engine(home.database_url)
    try:
        hits = search_products(index, session_factory(engine), embedder.embed_images([_image(photo)]), k=60)
    finally:
        index.close()
        engine.dispose()
    return next((n for n, h in enumerate(hits, 1) if h.sku == f"SKU-{row:05d}"), 99)


def test_a_version_that_cannot_beat_the_model_is_not_promoted(home, sessions, tmp_path) -> None:
    """Customers sending the catalog shots themselves: the model already finds every one first,
    so the learned version can at best tie on the held-out photos, and a tie does not promote."""
    store = ModelStore()
    _, base = store.resolve("test-tiny")
    _import(home, sessions, write_pairs(tmp_path / "pairs", "acme", list(range(40)), 1, photo=catalog_photo))
    outcome = learn(home, sessions, "test-tiny")
    assert outcome["holdout"]["before"]["recall_at_1"] == 1.0
    assert outcome["promoted"] is False and "does not beat" in outcome["reason"]
    assert outcome["version"] is None and outcome["model_id"] == base.model_id
    assert not store.pointer_path("test-tiny").exists()
    assert not list(store.installed_root.glob("test-tiny+pairs-*"))
    assert store.resolve("test-tiny")[1].model_id == base.model_id


def test_too_few_pairs_are_refused_saying_how_many_are_needed(home, sessions, tmp_path) -> None:
    _import(home, sessions, write_pairs(tmp_path / "pairs", "acme", list(range(5)), 2))
    with pytest.raises(LearningError, match=f"at least {MIN_PAIRS} confirmed pairs.*there are 10"):
        learn(home, sessions, "test-tiny")


def test_rollback_restores_the_previous_model_and_keeps_products_ingested_since(home, sessions, tmp_path) -> None:
    store = ModelStore()
    _, base = store.resolve("test-tiny")
    _import(home, sessions, write_pairs(tmp_path / "pairs", "acme", LOOKS, 6))
    assert learn(home, sessions, "test-tiny")["promoted"]
    # A vendor ingests new products while the learned version is active: they go to its store.
    rows = make_rows(5, start=200)
    (tmp_path / "initech").mkdir()
    summary = ingest_catalog(
        write_csv(tmp_path / "initech" / "catalog.csv", rows), "initech", open_embedder("test-tiny"), home
    )
    assert summary.accepted == 5 and summary.model_id == store.resolve("test-tiny")[1].model_id
    assert _rank(home, "test-tiny", product_photo(203), "SKU-00203") == 1
    outcome = rollback(store, home, "test-tiny")
    assert outcome["to"] == "test-tiny" and outcome["model_id"] == base.model_id
    assert store.resolve("test-tiny")[1].model_id == base.model_id
    assert read_pointer(store, "test-tiny")["stack"] == ["test-tiny"]
    for row in (200, 203, 204):  # ingested after the promotion, found with the previous model
        assert _rank(home, "test-tiny", product_photo(row), f"SKU-{row:05d}") == 1
    assert _rank(home, "test-tiny", product_photo(7), "SKU-00007") == 1  # and the catalog from before
    with pytest.raises(LearningError, match="no learned version to roll back"):
        rollback(store, home, "test-tiny")


def test_a_crash_before_the_pointer_is_written_leaves_the_previous_version_active(
    home, sessions, tmp_path, monkeypatch
) -> None:
    store = ModelStore()
    _, base = store.resolve("test-tiny")
    _import(home, sessions, write_pairs(tmp_path / "pairs", "acme", LOOKS, 6))

    def crash(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("power cut")

    for step in ("publish_index", "write_pointer"):  # after the re-projection; at the very last step
        with monkeypatch.context() as patch:
            patch.setattr(versions, step, crash)
            with pytest.raises(RuntimeError, match="power cut"):
                learn(home, sessions, "test-tiny")
        assert not store.pointer_path("test-tiny").exists()
        assert store.resolve("test-tiny")[1].model_id == base.model_id
        assert _rank(home, "test-tiny", product_photo(7), "SKU-00007") == 1
    outcome = learn(home, sessions, "test-tiny")  # the next run succeeds, past the orphaned versions
    assert outcome["promoted"] and outcome["version"] == "test-tiny+pairs-3"
    assert store.resolve("test-tiny")[1].model_id == outcome["model_id"]
    assert _rank(home, "test-tiny", product_photo(7), "SKU-00007") == 1


def test_a_serving_process_switches_and_keeps_what_was_written_meanwhile(home, sessions, tmp_path) -> None:
    service = SearchService(home, sessions, "test-tiny", window_ms=1.0)
    try:
        old_id = service.model_id
        _import(home, sessions, write_pairs(tmp_path / "pairs", "acme", LOOKS, 6))
        outcome = learn(home, sessions, "test-tiny")
        assert outcome["promoted"] and service.model_id == old_id  # not yet noticed
        # A customer view written by this process before it notices: it lands in the old store.
        view_id = view_image_id(product_id("acme", "SKU-00007"), 0)
        vector = service.embedder.embedder.embed_images([_image(look_photo(7, 60))])
        service.write_vectors(np.asarray([view_id]), vector, [ItemAttributes(10.5, "mugs", "acme", True)])
        assert service.needs_refresh()
        service.refresh_index()
        assert service.model_id == outcome["model_id"] and service.generation == 1
        assert not service.needs_refresh()
        new_store = VectorStore(home.vectors_dir(outcome["model_id"]), outcome["model_id"], 64)
        found, carried = new_store.vectors_of(np.asarray([view_id]))
        matrix = np.load(ModelStore().installed_dir(outcome["version"]) / "adapter.npy")
        assert found.all() and np.allclose(carried, project(vector, matrix), atol=1e-5)
        hits = asyncio.run(service.search(QueryInput(image_bytes=product_photo(12), k=5)))
        assert hits[0].sku == "SKU-00012"
        hits = asyncio.run(service.search(QueryInput(image_bytes=look_photo(7, 60), k=5)))
        assert hits[0].sku == "SKU-00007" and hits[0].image_id == view_id
    finally:
        service.close()


def test_learn_command_end_to_end(home, tmp_path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["learn", "--model", "test-tiny", "--json"])
    assert empty.exit_code == 2 and f"at least {MIN_PAIRS}" in " ".join(empty.output.split())
    pairs = write_pairs(tmp_path / "pairs", "acme", LOOKS, 6)
    result = runner.invoke(app, ["learn", "--pairs", str(pairs), "--model", "test-tiny", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["imported"]["imported"] == 180 and data["promoted"] is True
    assert data["holdout"]["after"]["recall_at_1"] > data["holdout"]["before"]["recall_at_1"]
    assert {"training", "pairs", "version", "model_id", "index"} <= set(data)
    (tmp_path / "shot.jpg").write_bytes(product_photo(44))
    searched = runner.invoke(app, ["search", str(tmp_path / "shot.jpg"), "--model", "test-tiny", "--json"])
    assert searched.exit_code == 0, searched.output
    assert json.loads(searched.output.strip().splitlines()[-1])[0]["sku"] == "SKU-00044"
    back = runner.invoke(app, ["learn", "--rollback", "--yes", "--model", "test-tiny", "--json"])
    assert back.exit_code == 0, back.output
    assert json.loads(back.output.strip().splitlines()[-1])["to"] == "test-tiny"
    again = runner.invoke(app, ["learn", "--rollback", "--yes", "--model", "test-tiny"])
    assert again.exit_code == 2 and "no learned version to roll back" in " ".join(again.output.split())

"""`vitrine reembed`: a catalog ingested with one model (test-tiny, 64-d) moved to another (demo-random,
128-d) from what the data folder keeps, customer views included. Real SQLite, ONNX and FAISS."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from catalogs import product_photo
from pair_photos import look_photo, write_pairs
from PIL import Image
from search_catalog import build_workspace
from sqlalchemy import select
from typer.testing import CliRunner

from catalog.catalog_index import CatalogIndex
from catalog.db import Product, ProductImage, make_engine, session_factory
from catalog.doctor import check_workspace
from catalog.ids import is_customer_view, product_id
from catalog.product_search import search_products
from catalog.search_service import QueryInput, SearchService
from catalog.workspace import Workspace
from catalog_ingest import reembed as reembed_module
from catalog_ingest.reembed import Reembedder, ReembedError
from cli.main import app
from index.persistence import read_manifest
from index.vector_store import VectorStore
from vision.embedder import open_embedder
from vision.model_store import ModelStore
from workflow.customer_views import offline_target
from workflow.models import CustomerView
from workflow.pairs_io import import_pairs
from workflow.settings import Settings
from workflow.view_reembed import CustomerViews

OLD, NEW = "test-tiny", "demo-random"
VIEW_ROWS = [3, 7, 44]  # products (acme 0-39, globex 40-59) given customer views, two photos each
PRODUCTS, VIEWS = 60, 6


@pytest.fixture(scope="module")
def template(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder made with test-tiny: 60 products and 6 customer views; demo-random exported beside it."""
    folder = tmp_path_factory.mktemp("reembed-template")
    home = folder / "home"
    shutil.copytree(tiny[0], home / "models" / OLD)
    models = ModelStore(home)
    models.resolve(NEW)  # exported once, shared (read-only) by every test
    old = open_embedder(OLD, store=models)
    workspace = build_workspace(folder, old)
    engine = make_engine(workspace.database_url)
    summary = import_pairs(
        write_pairs(folder / "pairs", "acme", [3, 7], 2),
        session_factory(engine),
        workspace,
        Settings.max_upload_bytes,
        Settings.max_upload_pixels,
        views=offline_target(workspace, old),
    )
    summary_globex = import_pairs(
        write_pairs(folder / "pairs-globex", "globex", [44], 2),
        session_factory(engine),
        workspace,
        Settings.max_upload_bytes,
        Settings.max_upload_pixels,
        views=offline_target(workspace, old),
    )
    engine.dispose()
    assert summary.views == {"added": 4} and summary_globex.views == {"added": 2}
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """This test's own VITRINE_HOME (the models folder shared with the template: nothing here writes it)."""
    target = tmp_path / "home"
    shutil.copytree(template, target, ignore=shutil.ignore_patterns("models"))
    (target / "models").symlink_to(template / "models")
    monkeypatch.setenv("VITRINE_HOME", str(target))
    return Workspace(target)


@pytest.fixture
def sessions(home: Workspace):
    engine = make_engine(home.database_url)
    yield session_factory(engine)
    engine.dispose()


def _manifest(name: str):  # type: ignore[no-untyped-def]
    return ModelStore().resolve(name)[1]


def _store(home: Workspace, name: str) -> VectorStore:
    manifest = _manifest(name)
    return VectorStore(home.vectors_dir(manifest.model_id), manifest.model_id, manifest.embed_dim)


def _reembed(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["reembed", "--model", NEW, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def _search(home: Workspace, name: str, photo: bytes, k: int = 5) -> list:
    embedder = open_embedder(name)
    query = embedder.embed_images([Image.open(io.BytesIO(photo)).convert("RGB")])[0]
    manifest = embedder.manifest
    index = CatalogIndex(home, manifest.model_id, manifest.embed_dim)
    engine = make_engine(home.database_url)
    try:
        return search_products(index, session_factory(engine), query, k)
    finally:
        index.close()
        engine.dispose()


def _view_ids(sessions) -> list[int]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return sorted(session.scalars(select(CustomerView.image_id).where(CustomerView.image_id.is_not(None))))


def test_reembed_moves_catalog_and_customer_views_to_the_new_model(home, sessions) -> None:
    old = _store(home, OLD)
    old_ids, old_segment = old.live_ids(), old.last_segment
    assert len(old_ids) == PRODUCTS + VIEWS
    assert not home.vectors_dir(_manifest(NEW).model_id).exists()  # nothing for the new model yet

    code, data = _reembed("--yes", "--json")

    assert code == 0, data
    manifest = _manifest(NEW)
    assert data["model_id"] == manifest.model_id and data["dim"] == 128
    assert data["catalog_image"] == {"total": PRODUCTS, "embedded": PRODUCTS, "skipped": 0, "failed": 0, "removed": 0}
    assert data["customer_view"] == {"total": VIEWS, "embedded": VIEWS, "skipped": 0, "failed": 0, "removed": 0}
    assert data["images_embedded"] == PRODUCTS + VIEWS and data["images_failed"] == 0 and data["failures"] == []
    assert data["index_kind"] == "flat" and data["index"]["count"] == PRODUCTS + VIEWS
    new = _store(home, NEW)
    np.testing.assert_array_equal(new.live_ids(), old_ids)  # every image and view, nothing else
    published = read_manifest(home.index_dir(manifest.model_id))  # the index is saved, covering the store
    assert published["model_id"] == manifest.model_id and published["count"] == PRODUCTS + VIEWS
    assert old.last_segment == old_segment and np.array_equal(old.live_ids(), old_ids)  # the old model untouched
    # Search with the new model finds every product from its own photo, first.
    for row in range(PRODUCTS):
        hits = _search(home, NEW, product_photo(row), k=3)
        assert hits[0].sku == f"SKU-{row:05d}", (row, [h.sku for h in hits])
    # A customer's photo that became a view with the old model matches that view in the new one.
    view_ids = _view_ids(sessions)
    hits = _search(home, NEW, look_photo(44, 1))
    assert hits[0].sku == "SKU-00044" and hits[0].image_id in view_ids and is_customer_view(hits[0].image_id)
    # Doctor agrees for both models: every image has its vector, every vector its product, indexes in step.
    report = check_workspace(home)
    assert report["healthy"], report
    assert {m["model_id"]: m["customer_views"] for m in report["models"]} == {
        _manifest(OLD).model_id: VIEWS,
        manifest.model_id: VIEWS,
    }
    # What `vitrine serve --model NEW` serves with: the query service over the same data folder.
    service = SearchService(home, sessions, NEW, window_ms=1.0)
    try:
        assert service.model_id == manifest.model_id
        served = asyncio.run(service.search(QueryInput(image_bytes=product_photo(21), k=3)))
        assert served[0].sku == "SKU-00021"
    finally:
        service.close()
    # `vitrine search --model NEW` on the same data folder.
    photo = home.home / "shot.jpg"
    photo.write_bytes(product_photo(12))
    searched = CliRunner().invoke(app, ["search", str(photo), "--model", NEW, "--json"])
    assert searched.exit_code == 0, searched.output
    assert json.loads(searched.stdout.strip().splitlines()[-1])[0]["sku"] == "SKU-00012"


def test_a_second_run_adds_nothing_and_force_replaces_without_duplicates(home) -> None:
    assert _reembed("--yes", "--json")[0] == 0
    new = _store(home, NEW)
    segment, rows = new.last_segment, new.stored_rows()

    code, again = _reembed("--json")  # nothing to do: no question asked, --yes not needed

    assert code == 0
    assert again["images_embedded"] == 0 and again["images_skipped"] == PRODUCTS + VIEWS
    assert again["catalog_image"]["skipped"] == PRODUCTS and again["customer_view"]["skipped"] == VIEWS
    assert again["index"]["mode"] == "unchanged" and again["index"]["count"] == PRODUCTS + VIEWS
    assert new.last_segment == segment and new.stored_rows() == rows  # not one row written
    before = new.vectors_of(new.live_ids())[1]

    code, forced = _reembed("--force", "--yes", "--json", "--batch", "25")

    assert code == 0 and forced["force"] is True
    assert forced["images_embedded"] == PRODUCTS + VIEWS and forced["images_skipped"] == 0
    assert new.count() == PRODUCTS + VIEWS and forced["index"]["count"] == PRODUCTS + VIEWS
    np.testing.assert_allclose(new.vectors_of(new.live_ids())[1], before, atol=1e-5)  # same images, same vectors


def test_a_missing_or_broken_image_file_is_reported_and_the_rest_succeed(home, sessions) -> None:
    with sessions() as session:
        images = {
            sku: (image, sha)
            for sku, image, sha in session.execute(
                select(Product.sku, ProductImage.id, ProductImage.sha256).join(ProductImage)
            )
        }
        view = session.scalars(select(CustomerView).where(CustomerView.image_id.is_not(None))).first()
        view_id, view_sha = view.image_id, view.photo_sha256
    missing, broken = images["SKU-00005"], images["SKU-00050"]
    home.thumbnail_path(missing[1]).unlink()
    home.thumbnail_path(broken[1]).write_bytes(b"not an image at all")
    home.thumbnail_path(view_sha).unlink()

    code, data = _reembed("--yes", "--json")

    assert code == 1  # the run finished; the exit status says some images failed
    assert data["images_failed"] == 3 and data["images_embedded"] == PRODUCTS + VIEWS - 3
    failed = {f["image_id"]: f for f in data["failures"]}
    assert set(failed) == {missing[0], broken[0], view_id}
    assert failed[missing[0]]["sku"] == "SKU-00005" and failed[missing[0]]["vendor"] == "acme"
    assert failed[missing[0]]["kind"] == "catalog_image" and "missing" in failed[missing[0]]["reason"]
    assert failed[broken[0]]["sku"] == "SKU-00050" and failed[broken[0]]["vendor"] == "globex"
    assert failed[view_id]["kind"] == "customer_view" and "missing" in failed[view_id]["reason"]
    assert sum(data["failed_by_reason"].values()) == 3
    assert Path(data["report"]).is_file() and json.loads(Path(data["report"]).read_text())["images_failed"] == 3
    new = _store(home, NEW)
    assert set(new.live_ids()) == set(_store(home, OLD).live_ids()) - set(failed)
    assert _search(home, NEW, product_photo(6))[0].sku == "SKU-00006"  # the others are searchable

    # The file comes back: the next run embeds just that one.
    home.thumbnail_path(missing[1]).write_bytes(product_photo(5))
    code, data = _reembed("--yes", "--json")
    assert code == 1 and data["images_embedded"] == 1 and data["images_failed"] == 2
    assert data["images_skipped"] == PRODUCTS + VIEWS - 3
    assert new.vectors_of(np.asarray([missing[0]]))[0].all()


def test_a_crash_midway_is_completed_by_the_next_run(home, sessions, monkeypatch) -> None:
    embedder = open_embedder(NEW)
    real_append = VectorStore.append
    appended: list[int] = []

    def crash_after_two_batches(self, ids, vectors, attributes=None):  # type: ignore[no-untyped-def]
        if len(appended) == 2:
            raise KeyboardInterrupt("killed")
        appended.append(len(ids))
        real_append(self, ids, vectors, attributes)

    monkeypatch.setattr(VectorStore, "append", crash_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        Reembedder(home, sessions, embedder, [CustomerViews], batch=16).run()
    monkeypatch.setattr(VectorStore, "append", real_append)
    assert appended == [16, 16] and _store(home, NEW).count() == 32

    progress: list[tuple[int, int, int]] = []
    summary = Reembedder(home, sessions, embedder, [CustomerViews], batch=16).run(
        progress=lambda *a: progress.append(a)
    )

    assert summary.embedded == PRODUCTS + VIEWS - 32 and summary.failed == 0
    assert summary.kinds["catalog_image"].to_json()["skipped"] == 32
    assert progress[0] == (0, 0, PRODUCTS + VIEWS - 32) and progress[-1] == (34, 34, 34)
    np.testing.assert_array_equal(_store(home, NEW).live_ids(), _store(home, OLD).live_ids())
    assert summary.index["count"] == PRODUCTS + VIEWS


def test_vectors_nothing_claims_any_more_are_removed(home, sessions) -> None:
    assert _reembed("--yes", "--json")[0] == 0
    new = _store(home, NEW)
    stray = product_id("acme", "gone") << 4
    new.append([stray], np.ones((1, 128), np.float32) / np.sqrt(128))
    gone_view = _view_ids(sessions)[0]
    with sessions() as session:  # an operator removed a view while the old model was in use
        view = session.scalars(select(CustomerView).where(CustomerView.image_id == gone_view)).one()
        view.removed_at = view.created_at
        session.commit()

    code, data = _reembed("--yes", "--json")

    assert code == 0 and data["vectors_removed"] == 2 and data["images_embedded"] == 0
    assert data["catalog_image"]["removed"] == 1 and data["customer_view"]["removed"] == 1
    found, _ = new.vectors_of(np.asarray([stray, gone_view]))
    assert not found.any() and new.count() == PRODUCTS + VIEWS - 1 == data["index"]["count"]


def test_the_command_asks_first_and_refuses_what_it_cannot_do(home, sessions) -> None:
    runner = CliRunner()
    declined = runner.invoke(app, ["reembed", "--model", NEW], input="n\n")
    assert declined.exit_code == 1 and "Embed 60 catalog images, 6 customer views" in " ".join(declined.output.split())
    assert not home.vectors_dir(_manifest(NEW).model_id).exists()  # declining writes nothing
    quiet = runner.invoke(app, ["reembed", "--model", NEW, "--json"])
    assert quiet.exit_code == 2 and "needs --yes" in quiet.output
    unknown = runner.invoke(app, ["reembed", "--model", "no-such-model", "--yes"])
    assert unknown.exit_code == 2 and "Unknown model" in " ".join(unknown.output.split())
    accepted = runner.invoke(app, ["reembed", "--model", NEW], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "catalog images: 60 embedded" in accepted.output and f"vitrine serve --model {NEW}" in accepted.output
    # One reembed per store at a time.
    embedder = open_embedder(NEW)
    with reembed_module._reembed_lock(_store(home, NEW)), pytest.raises(ReembedError, match="another"):
        Reembedder(home, sessions, embedder).run()


def test_a_data_folder_without_a_catalog_is_refused(tmp_path, monkeypatch, template) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "models").symlink_to(template / "models")
    monkeypatch.setenv("VITRINE_HOME", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["reembed", "--model", NEW, "--yes"])
    assert result.exit_code == 2 and "no catalog" in " ".join(result.output.split())

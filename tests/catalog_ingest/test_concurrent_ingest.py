"""Two vendors' ingests at once, in threads of one process (the web app's ingest jobs) and in two
`vitrine ingest` processes (issue 15, item 2): afterwards `vitrine doctor` finds nothing wrong, every
product of both files has its vectors and is found by a photo search, and nothing was lost.

The thread test is made deterministic on purpose: vendor A's first batch is held between writing its
vectors and committing its products until vendor B's run has started. A start that judged "vectors
without a product" then (the old `_reconcile`) tombstoned A's vectors and left A's products
unsearchable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from catalogs import make_rows, product_photo, write_csv, write_photos
from sqlalchemy import select

from catalog.catalog_index import CatalogIndex
from catalog.db import Product, ProductImage, Vendor, make_engine, session_factory
from catalog.doctor import check_workspace
from catalog.product_search import search_products
from catalog.workspace import Workspace
from catalog_ingest.ingest import IngestOptions, IngestSummary, ingest_catalog
from index.vector_store import VectorStore
from vision.embedder import open_embedder
from vision.pipeline import load_pixels

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


def _catalog(folder: Path, count: int, start: int) -> Path:
    rows = make_rows(count, start)
    folder.mkdir(parents=True, exist_ok=True)
    write_photos(folder, rows)
    return write_csv(folder / "catalog.csv", rows)


def _images_by_vendor(workspace: Workspace) -> dict[str, dict[str, list[int]]]:
    """vendor → sku → image ids, from the database."""
    engine = make_engine(workspace.database_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(Vendor.name, Product.sku, ProductImage.id)
                .join(Product, Product.vendor_id == Vendor.id)
                .join(ProductImage, ProductImage.product_id == Product.id)
            ).all()
    finally:
        engine.dispose()
    out: dict[str, dict[str, list[int]]] = {}
    for vendor, sku, image in rows:
        out.setdefault(vendor, {}).setdefault(sku, []).append(image)
    return out


def _assert_everything_searchable(workspace: Workspace, embedder, expected: dict[str, range]) -> None:
    images = _images_by_vendor(workspace)
    assert {v: len(s) for v, s in images.items()} == {v: len(r) for v, r in expected.items()}
    model_id, dim = embedder.manifest.model_id, embedder.manifest.embed_dim
    store = VectorStore(workspace.vectors_dir(model_id), model_id, dim)
    ids = np.asarray([i for skus in images.values() for ids in skus.values() for i in ids], np.int64)
    found, _ = store.vectors_of(ids)
    assert found.all(), f"{int((~found).sum())} product images lost their vectors"
    report = check_workspace(workspace)
    assert report["healthy"], report
    engine = make_engine(workspace.database_url)
    index = CatalogIndex(workspace, model_id, dim)
    try:
        for vendor, numbers in expected.items():
            for n in numbers:
                query = embedder.embed_pixels(load_pixels(product_photo(n), embedder.manifest.preprocess)[None])[0]
                hit = search_products(index, session_factory(engine), query, 1)[0]
                assert (hit.sku, hit.vendor) == (f"SKU-{n:05d}", vendor)
    finally:
        index.close()
        engine.dispose()


def test_two_vendors_ingesting_in_threads_lose_nothing(tmp_path: Path, embedder, monkeypatch):
    workspace = Workspace(tmp_path / "home")
    north, south = _catalog(tmp_path / "north", 24, 0), _catalog(tmp_path / "south", 24, 100)
    north_wrote, south_started = threading.Event(), threading.Event()
    original_append = VectorStore.append
    held = []

    def append_then_wait(self, *args, **kwargs):  # the first append of all is north's first batch
        original_append(self, *args, **kwargs)
        if not held:
            held.append(True)
            north_wrote.set()
            south_started.wait(timeout=60)  # its products are not committed until south has begun

    monkeypatch.setattr(VectorStore, "append", append_then_wait)
    results: dict[str, IngestSummary | BaseException] = {}

    def run(name: str, catalog: Path, options: IngestOptions) -> None:
        try:
            results[name] = ingest_catalog(catalog, name, embedder, workspace, options)
        except BaseException as exc:  # reported below, not lost in the thread
            results[name] = exc

    def south_began(summary: IngestSummary) -> None:
        south_started.set()

    first = threading.Thread(target=run, args=("north", north, IngestOptions(batch_rows=4)))
    first.start()
    assert north_wrote.wait(timeout=120), "north never wrote its first batch"
    second = threading.Thread(target=run, args=("south", south, IngestOptions(batch_rows=4, on_batch=south_began)))
    second.start()
    first.join(timeout=300)
    second.join(timeout=300)
    assert south_started.is_set()
    for name in ("north", "south"):
        summary = results[name]
        assert isinstance(summary, IngestSummary), summary
        assert (summary.accepted, len(summary.rejected)) == (24, 0)
    _assert_everything_searchable(workspace, embedder, {"north": range(0, 24), "south": range(100, 124)})


# An ingest in a process of its own, batches of 4 rows. With "hold", its first batch waits between
# writing its vectors and committing its products until the file named in argv[5] exists; otherwise
# it creates that file once its run has begun (its first batch read).
INGEST = """
import sys, time
from pathlib import Path
from catalog.workspace import Workspace
from catalog_ingest.ingest import IngestOptions, ingest_catalog
from index.vector_store import VectorStore
from vision.embedder import open_embedder
from vision.model_store import ModelStore
catalog, vendor, home, models, signal, role = sys.argv[1:7]
embedder = open_embedder("test-tiny", "onnx", ModelStore(Path(models)))
options = IngestOptions(batch_rows=4)
if role == "hold":
    append, held = VectorStore.append, []
    def append_then_wait(self, *args, **kwargs):
        append(self, *args, **kwargs)
        if not held:
            held.append(True)
            Path(signal + ".wrote").touch()
            deadline = time.monotonic() + 60
            while not Path(signal).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    VectorStore.append = append_then_wait
else:
    options.on_batch = lambda summary: Path(signal).touch()
summary = ingest_catalog(Path(catalog), vendor, embedder, Workspace(Path(home)), options)
print(summary.accepted, len(summary.rejected))
"""


def _ingest_process(catalog: Path, vendor: str, workspace: Workspace, models: Path, signal: Path, role: str):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VITRINE_DATABASE_URL": workspace.database_url}
    return subprocess.Popen(
        [sys.executable, "-c", INGEST, str(catalog), vendor, str(workspace.home), str(models), str(signal), role],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_vendors_ingesting_in_processes_lose_nothing(tmp_path: Path, embedder, vitrine_home: Path):
    """The thread test's schedule across two processes: the store's locks are flocks, not in-memory."""
    workspace = Workspace(tmp_path / "home")
    north, south = _catalog(tmp_path / "north", 24, 0), _catalog(tmp_path / "south", 24, 100)
    signal = tmp_path / "south-started"
    first = _ingest_process(north, "north", workspace, vitrine_home, signal, "hold")
    deadline = time.monotonic() + 120
    while not Path(f"{signal}.wrote").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    second = _ingest_process(south, "south", workspace, vitrine_home, signal, "signal")
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        assert out.split() == ["24", "0"]
    _assert_everything_searchable(workspace, embedder, {"north": range(0, 24), "south": range(100, 124)})


def _vitrine() -> str:
    found = shutil.which("vitrine", path=str(Path(sys.executable).parent))
    assert found, "the vitrine console script is not installed"
    return found


def _home_with_models(home: Path, models_home: Path) -> dict[str, str]:
    """A fresh data folder for the CLI that borrows the session's exported test model."""
    home.mkdir(parents=True)
    (home / "models").symlink_to(models_home / "models", target_is_directory=True)
    workspace = Workspace(home)
    return {**os.environ, "VITRINE_HOME": str(home), "VITRINE_DATABASE_URL": workspace.database_url}


@pytest.mark.slow
def test_two_vitrine_ingest_processes_at_once(tmp_path: Path, tiny, vitrine_home: Path, embedder):
    """Two `vitrine ingest` processes of different vendors side by side (three batches each), then
    `vitrine doctor` and `vitrine search` in the same data folder."""
    env = _home_with_models(tmp_path / "home", vitrine_home)
    workspace = Workspace(tmp_path / "home")
    catalogs = {"north": _catalog(tmp_path / "north", 300, 0), "south": _catalog(tmp_path / "south", 300, 1000)}
    processes = {
        vendor: subprocess.Popen(
            [_vitrine(), "ingest", str(path), "--vendor", vendor, "--model", "test-tiny", "--json"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for vendor, path in catalogs.items()
    }
    for vendor, process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        summary = json.loads(out.splitlines()[-1])
        assert (summary["accepted"], summary["rejected"]) == (300, 0), vendor
    doctor = subprocess.run([_vitrine(), "doctor", "--json"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert json.loads(doctor.stdout)["healthy"]
    for vendor, number in (("north", 7), ("south", 1234)):
        photo = tmp_path / f"{vendor}.png"
        photo.write_bytes(product_photo(number))
        found = subprocess.run(
            [_vitrine(), "search", str(photo), "--model", "test-tiny", "--json", "--k", "1"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert found.returncode == 0, found.stderr
        best = json.loads(found.stdout)[0]
        assert (best["sku"], best["vendor"]) == (f"SKU-{number:05d}", vendor)
    _assert_everything_searchable(workspace, embedder, {"north": range(0, 300), "south": range(1000, 1300)})

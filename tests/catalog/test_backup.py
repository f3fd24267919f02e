"""`vitrine backup` during a real `vitrine ingest`, then `vitrine restore` into an empty folder: doctor is
healthy and every product the backup's database holds is there, with its vector, in the index."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from catalogs import make_rows, write_csv, write_photos
from typer.testing import CliRunner

from catalog.backup import MANIFEST, BackupError, backup, restore
from catalog.catalog_index import CatalogIndex
from catalog.db import database_url
from catalog.doctor import check_workspace
from catalog.ids import image_id, product_id
from catalog.workspace import Workspace
from catalog_ingest.ingest import IngestOptions, ingest_catalog
from cli.main import app
from index.vector_store import VectorStore
from vision.embedder import open_embedder

ROWS = 1500


def _vitrine(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    environment = {**os.environ, "VITRINE_HOME": str(home)}
    environment.pop("VITRINE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=timeout, env=environment
    )


def _count(database: Path, table: str) -> int:
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    except sqlite3.OperationalError:
        return 0
    try:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0
    finally:
        connection.close()


def _home_with_model(tmp_path: Path, name: str, tiny) -> Path:
    """A fresh data folder that already holds the exported test-tiny model (no second export)."""
    home = tmp_path / name
    shutil.copytree(tiny[0], home / "models" / tiny[0].name)
    return home


@pytest.mark.slow
def test_a_backup_taken_during_an_ingest_restores_healthy_with_every_committed_product(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr("catalog.workspace.database_url", database_url)  # SQLite files, as the subprocesses use
    monkeypatch.delenv("VITRINE_DATABASE_URL", raising=False)
    home = _home_with_model(tmp_path, "live", tiny)
    rows = make_rows(ROWS)
    write_photos(tmp_path / "catalog", rows)
    catalog = write_csv(tmp_path / "catalog" / "acme.csv", rows)
    environment = {**os.environ, "VITRINE_HOME": str(home)}
    environment.pop("VITRINE_DATABASE_URL", None)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "cli", "ingest", str(catalog), "--vendor", "acme", "--model", "test-tiny"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )  # fmt: skip
    database = home / "vitrine.db"
    try:
        deadline = time.monotonic() + 240
        while _count(database, "products") < 256 and time.monotonic() < deadline and ingest.poll() is None:
            time.sleep(0.05)
        committed_before = _count(database, "products")
        assert ingest.poll() is None and 0 < committed_before < ROWS, "the backup must start mid-ingest"
        dest = tmp_path / "backup"
        progress: list[str] = []
        summary = backup(Workspace(home), dest, progress.append)  # in-process: it starts at once, mid-ingest
        committed_after = _count(database, "products")
        _out, errors = ingest.communicate(timeout=300)
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait()
    assert ingest.returncode == 0, errors
    assert _count(database, "products") == ROWS
    # The snapshot lies between what was committed when the backup began and when it ended.
    backed_up = summary["database"]["products"]
    assert committed_before <= backed_up <= committed_after
    assert _count(dest / "vitrine.db", "products") == backed_up
    (model,) = summary["models"]
    assert model["model_id"] == tiny[1].model_id and model["vectors"] == summary["database"]["images"] == backed_up
    assert progress[0].startswith("database:") and progress[-1].startswith("backup complete")

    target = tmp_path / "restored"
    restored = _vitrine(target, "restore", str(dest), "--json")
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)["doctor"]
    assert report["healthy"], report
    assert _vitrine(target, "doctor").returncode == 0
    # Every product row of the backup is there, and each image is a vector of the store and of the index.
    connection = sqlite3.connect(target / "vitrine.db")
    products = connection.execute("SELECT count(*) FROM products").fetchone()[0]
    image_ids = np.array([r[0] for r in connection.execute("SELECT id FROM product_images")], np.int64)
    connection.close()
    assert products == backed_up and len(image_ids) == backed_up
    index = CatalogIndex(Workspace(target), tiny[1].model_id, tiny[1].embed_dim)
    try:
        assert np.isin(image_ids, index.index.ids()).all() and len(index.index) == backed_up
        assert index.store.count() == backed_up
    finally:
        index.close()
    assert (target / "secret.key").exists() == (home / "secret.key").exists()
    # ...and the thumbnail of each.
    connection = sqlite3.connect(target / "vitrine.db")
    hashes = [r[0] for r in connection.execute("SELECT sha256 FROM product_images")]
    connection.close()
    assert all(Workspace(target).thumbnail_path(sha).is_file() for sha in hashes)


def test_restore_checks_every_file_and_refuses_a_non_empty_folder(tmp_path, tiny, store, monkeypatch):
    monkeypatch.setattr("catalog.workspace.database_url", database_url)  # SQLite files, whatever the run's database
    monkeypatch.delenv("VITRINE_DATABASE_URL", raising=False)
    home = tmp_path / "live"
    rows = make_rows(40)
    write_photos(tmp_path / "catalog", rows)
    catalog = write_csv(tmp_path / "catalog" / "acme.csv", rows)
    ingest_catalog(catalog, "acme", open_embedder("test-tiny", "onnx", store), Workspace(home), IngestOptions())
    (home / "secret.key").write_text("s3cret\n")
    # A batch whose vectors are stored but whose products are not committed yet (an ingest mid-commit).
    live_store = VectorStore.open(Workspace(home).vectors_dir(tiny[1].model_id))
    pending = np.asarray([image_id(product_id("acme", f"NEW-{n}"), 0) for n in range(3)], np.int64)
    live_store.append(pending, np.eye(3, tiny[1].embed_dim, dtype=np.float32))
    assert check_workspace(Workspace(home))["models"][0]["vectors_without_product"]["count"] == 3
    dest = tmp_path / "backup"
    summary = backup(Workspace(home), dest)
    assert summary["database"] == {"kind": "sqlite", "products": 40, "images": 40}
    assert summary["models"][0]["left_out"] == 3 and summary["models"][0]["vectors"] == 40
    manifest = json.loads((dest / MANIFEST).read_text())
    assert "secret.key" in manifest["files"] and "vitrine.db" in manifest["files"]
    vectors = Workspace(dest).vectors_dir(tiny[1].model_id).relative_to(dest)
    assert any(name.startswith(f"{vectors}/segment-") for name in manifest["files"])
    assert any(name.startswith("images/") for name in manifest["files"])

    with pytest.raises(BackupError, match="not empty"):
        backup(Workspace(home), dest)  # never over an earlier backup
    with pytest.raises(BackupError, match="inside the data folder"):
        backup(Workspace(home), home / "backups" / "today")

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VITRINE_HOME", str(occupied))
        refused = CliRunner().invoke(app, ["restore", str(dest)])
    words = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "is not empty (1 entries, e.g. notes.txt)" in words, refused.output
    assert sorted(p.name for p in occupied.iterdir()) == ["notes.txt"]  # nothing was written

    damaged = tmp_path / "damaged"
    shutil.copytree(dest, damaged)
    segment = next((damaged / vectors).glob("segment-*.parquet"))
    segment.write_bytes(segment.read_bytes()[:-1] + b"\x00")
    with pytest.raises(BackupError, match="checksum mismatch"):
        restore(damaged, Workspace(tmp_path / "fresh-1"))
    assert not any((tmp_path / "fresh-1").iterdir())
    (damaged / MANIFEST).unlink()
    with pytest.raises(BackupError, match="not a complete Vitrine backup"):
        restore(damaged, Workspace(tmp_path / "fresh-2"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VITRINE_HOME", str(tmp_path / "fresh-3"))
        restored = CliRunner().invoke(app, ["restore", str(dest), "--json"])
    assert restored.exit_code == 0, restored.output
    assert (tmp_path / "fresh-3" / "secret.key").read_text() == "s3cret\n"
    assert check_workspace(Workspace(tmp_path / "fresh-3"))["healthy"]


def test_a_postgresql_database_is_dumped_on_a_snapshot_and_restored_into_an_empty_one(tmp_path, tiny, store):
    from postgres import postgres_server
    from sqlalchemy import create_engine, text

    with postgres_server() as server_url, pytest.MonkeyPatch.context() as patch:
        patch.setattr("catalog.workspace.database_url", database_url)  # the URLs below decide, nothing else
        admin = create_engine(server_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE restored"))
        admin.dispose()
        live_url = server_url
        patch.setenv("VITRINE_DATABASE_URL", live_url)
        rows = make_rows(30)
        write_photos(tmp_path / "catalog", rows)
        catalog = write_csv(tmp_path / "catalog" / "acme.csv", rows)
        embedder = open_embedder("test-tiny", "onnx", store)
        ingest_catalog(catalog, "acme", embedder, Workspace(tmp_path / "live"), IngestOptions())
        summary = backup(Workspace(tmp_path / "live"), tmp_path / "backup")
        assert summary["database"] == {"kind": "postgresql", "products": 30, "images": 30}
        assert (tmp_path / "backup" / "database.pgdump").is_file()
        assert not (tmp_path / "backup" / "vitrine.db").exists()

        patch.delenv("VITRINE_DATABASE_URL")
        with pytest.raises(BackupError, match="holds a postgresql database"):
            restore(tmp_path / "backup", Workspace(tmp_path / "as-sqlite"))
        patch.setenv("VITRINE_DATABASE_URL", live_url)
        with pytest.raises(BackupError, match="has tables"):
            restore(tmp_path / "backup", Workspace(tmp_path / "over-live"))
        restored_url = live_url.rsplit("/", 1)[0] + "/restored"
        patch.setenv("VITRINE_DATABASE_URL", restored_url)
        restore(tmp_path / "backup", Workspace(tmp_path / "restored"))
        report = check_workspace(Workspace(tmp_path / "restored"))
        assert report["healthy"] and report["models"][0]["images_in_database"] == 30, report
        engine = create_engine(restored_url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM products")).scalar_one() == 30
        engine.dispose()

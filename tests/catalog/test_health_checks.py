"""`vitrine doctor` runs the database's integrity check and reports a corrupt index (with the command
that rebuilds it) without a traceback; a server starting on a missing or corrupt saved index rebuilds
it from the vector store and saves it, so the next start loads it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from health_support import corrupt_sqlite, small_workspace
from typer.testing import CliRunner

from catalog.db import make_engine, session_factory
from catalog.search_service import SearchService
from cli.main import app
from index.persistence import CURRENT, ENGINE_FILE, VECTORS_FILE, load_index
from index.vector_store import VectorStore
from vision.embedder import open_embedder

runner = CliRunner()


@pytest.fixture(scope="module")
def pristine(tiny, store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = small_workspace(tmp_path_factory.mktemp("pristine") / "shop", open_embedder("test-tiny", "onnx", store))
    return workspace.home


@pytest.fixture
def home(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the ingested data folder to break, as VITRINE_HOME (the models stay where they are)."""
    from catalog.workspace import Workspace

    copy = tmp_path / "home"
    shutil.copytree(pristine, copy)
    monkeypatch.setattr(Workspace, "from_env", classmethod(lambda cls: cls(copy)))
    return copy


def _index_dir(home: Path) -> Path:
    (folder,) = [p for p in (home / "index").iterdir() if p.is_dir()]
    return folder


def _corrupt_index(home: Path) -> None:
    directory = _index_dir(home)
    version = directory / (directory / CURRENT).read_text().strip()
    target = version / (ENGINE_FILE if (version / ENGINE_FILE).is_file() else VECTORS_FILE)
    data = bytearray(target.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xa5" * 64
    target.write_bytes(bytes(data))


@pytest.mark.sqlite_only
def test_doctor_runs_the_integrity_check_and_reports_damaged_pages(home: Path) -> None:
    healthy = runner.invoke(app, ["doctor", "--json"])
    assert healthy.exit_code == 0, healthy.output
    report = json.loads(healthy.stdout)
    assert report["healthy"] and report["database"] == {
        "ok": True,
        "check": "integrity_check",
        "complete": True,
        "problems": [],
    }
    corrupt_sqlite(home / "vitrine.db")
    broken = runner.invoke(app, ["doctor", "--json"])
    assert broken.exit_code == 1, broken.output
    report = json.loads(broken.stdout)
    assert not report["healthy"] and not report["database"]["ok"] and report["database"]["problems"]
    text = runner.invoke(app, ["doctor"])
    assert text.exit_code == 1 and "Traceback" not in text.output and "problems found" in text.output
    assert text.exception is None or isinstance(text.exception, SystemExit)


@pytest.mark.sqlite_only
def test_doctor_reports_a_corrupt_index_with_the_rebuild_command(home: Path) -> None:
    _corrupt_index(home)
    broken = runner.invoke(app, ["doctor", "--json"])
    assert broken.exit_code == 1, broken.output
    assert isinstance(broken.exception, SystemExit)  # an exit, not a crash
    (model,) = json.loads(broken.stdout)["models"]
    assert model["index"]["status"] == "corrupt"
    assert model["index"]["fix"].startswith("vitrine index rebuild --model ")
    text = runner.invoke(app, ["doctor"])
    assert text.exit_code == 1 and "Traceback" not in text.output
    assert "index corrupt" in text.output and "vitrine index rebuild" in text.output
    directory = _index_dir(home)  # VITRINE_HOME holds the models here: name the copied folders
    rebuild = [*model["index"]["fix"].split()[1:], "--store", str(home / "vectors" / directory.name)]
    fixed = runner.invoke(app, [*rebuild, "--index", str(directory)])
    assert fixed.exit_code == 0, fixed.output
    assert runner.invoke(app, ["doctor", "--json"]).exit_code == 0


@pytest.mark.parametrize("damage", ["deleted", "corrupt"])
def test_startup_rebuilds_a_missing_or_corrupt_index_and_saves_it(home: Path, store, damage: str) -> None:
    from catalog.workspace import Workspace

    directory = _index_dir(home)
    if damage == "deleted":
        shutil.rmtree(directory)
    else:
        _corrupt_index(home)
    workspace = Workspace(home)
    engine = make_engine(workspace.database_url)
    try:
        service = SearchService(workspace, session_factory(engine), "test-tiny", window_ms=1.0)
        try:
            assert service.index.repaired
            vectors = VectorStore.open(workspace.vectors_dir(service.model_id))
            assert len(service.index.index) == vectors.count() > 0
        finally:
            service.close()
        saved = load_index(directory, expected_model_id=service.model_id)  # written back, checksums good
        assert sorted(saved.ids()) == sorted(vectors.live_ids())
        saved.close()
        again = SearchService(workspace, session_factory(engine), "test-tiny", window_ms=1.0)
        assert again.index.repaired is None  # the next start loads what the first one saved
        again.close()
    finally:
        engine.dispose()

"""What a killed ingest leaves behind is cleared at start-up (issue 17, item 7): a real ingest process
killed with SIGKILL mid-run leaves its job `running` and its scratch files; the next start marks the
job failed (`interrupted`), removes the files, and a live ingest's job and files are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from catalogs import make_rows, write_csv
from sqlalchemy import select

from catalog.db import IngestJob, make_engine, session_factory
from catalog.leftovers import clean_leftovers, scratch_dir
from catalog.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]

# A real ingest in its own process, slowed to a batch of 4 rows so it is still running when killed.
INGEST = """
import sys
from pathlib import Path
from catalog.workspace import Workspace
from catalog_ingest.ingest import IngestOptions, ingest_catalog
from vision.embedder import open_embedder
from vision.model_store import ModelStore
embedder = open_embedder("test-tiny", "onnx", ModelStore(Path(sys.argv[3])))
ingest_catalog(Path(sys.argv[1]), "acme", embedder, Workspace(Path(sys.argv[2])), IngestOptions(batch_rows=4))
print("finished")
"""


def _jobs(workspace: Workspace) -> list[tuple[int, str, dict | None]]:
    engine = make_engine(workspace.database_url)
    try:
        with session_factory(engine)() as session:
            return [(j.id, j.status, j.summary) for j in session.scalars(select(IngestJob).order_by(IngestJob.id))]
    finally:
        engine.dispose()


def _start_ingest(catalog: Path, workspace: Workspace, models_home: Path) -> subprocess.Popen:
    # The database this test reads, also when it is not the folder's own file (VITRINE_TEST_DATABASE=postgresql).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VITRINE_DATABASE_URL": workspace.database_url}
    return subprocess.Popen(
        [sys.executable, "-c", INGEST, str(catalog), str(workspace.home), str(models_home)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_running(process: subprocess.Popen, workspace: Workspace) -> None:
    """Until the job is recorded `running` and its near-duplicate scratch folder exists."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the ingest ended before it could be killed: {process.communicate()}")
        folder = scratch_dir(workspace)
        scratch = list(folder.glob(f"near-{process.pid}-*")) if folder.is_dir() else []
        if scratch:
            jobs = _jobs(workspace)
            if jobs and jobs[-1][1] == "running":
                return
        time.sleep(0.02)
    raise AssertionError("the ingest never started")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    (tmp_path / "vendor").mkdir()
    return write_csv(tmp_path / "vendor" / "catalog.csv", make_rows(400))


def test_a_killed_ingest_is_marked_interrupted_and_its_scratch_removed(
    tmp_path: Path, catalog: Path, tiny, store
) -> None:
    workspace = Workspace(tmp_path / "home")
    engine = make_engine(workspace.database_url)
    sessions = session_factory(engine)
    process = _start_ingest(catalog, workspace, store.home)
    try:
        _wait_until_running(process, workspace)
        # While it runs, a start-up elsewhere leaves its job and its files alone.
        assert clean_leftovers(workspace, sessions).jobs == []
        assert _jobs(workspace)[-1][1] == "running"
        assert list(scratch_dir(workspace).glob(f"near-{process.pid}-*"))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    job_id, status, summary = _jobs(workspace)[-1]
    assert status == "running" and summary and summary.get("run_lock")  # what kill -9 leaves
    left = [p.name for p in scratch_dir(workspace).iterdir()]
    assert any(name.startswith(f"near-{process.pid}-") for name in left)

    found = clean_leftovers(workspace, sessions)

    assert found.jobs == [job_id]
    job = _jobs(workspace)[-1]
    assert job[1] == "failed" and job[2]["error"] == "interrupted"
    remaining = [p.name for p in scratch_dir(workspace).iterdir()]
    assert not [name for name in remaining if f"-{process.pid}-" in name], remaining
    assert clean_leftovers(workspace, sessions).jobs == []  # nothing twice
    engine.dispose()

    # The next ingest (a short file of the same vendor) runs to the end over what was left.
    again = _start_ingest(write_csv(catalog.with_name("short.csv"), make_rows(12)), workspace, store.home)
    _out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert [status for _, status, _ in _jobs(workspace)] == ["failed", "done"]


def test_scratch_files_of_dead_processes_go_and_live_ones_stay(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "home")
    engine = make_engine(workspace.database_url)
    folder = scratch_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (folder / f"vectors-{dead_pid}-0.f32").write_bytes(b"\0" * 64)
    (folder / f"near-{dead_pid}-3").mkdir()
    (folder / f"near-{dead_pid}-3" / "cell-0.f32").write_bytes(b"\0" * 64)
    mine = folder / f"vectors-{os.getpid()}-7.f32"
    mine.write_bytes(b"\0" * 64)
    unrelated = folder / "notes.txt"
    unrelated.write_text("not ours")

    found = clean_leftovers(workspace, session_factory(engine))

    assert sorted(found.files) == sorted([f"vectors-{dead_pid}-0.f32", f"near-{dead_pid}-3"])
    assert mine.exists() and unrelated.exists()
    engine.dispose()

"""Many writers on one vector store (issue 15, item 2): appends, compactions, reads and publishes side
by side, in threads and in processes, lose no row and raise nothing; runs in flight keep a starting
run from judging their vectors orphans, and a killed run blocks nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from catalog.catalog_index import publish_index
from catalog.workspace import Workspace
from index.file_lock import LockHeld, exclusive_lock, in_flight, shared_lock
from index.persistence import load_index, read_manifest
from index.vector_store import RUNS_LOCK, VectorStore

ROOT = Path(__file__).resolve().parents[2]
DIM = 8
MODEL = "concurrency-test"


def _vectors(ids: np.ndarray) -> np.ndarray:
    """A vector that says which id it belongs to: each row can be checked after the fact."""
    return np.stack([np.full(DIM, float(i), np.float32) for i in ids])


def _run_threads(targets: list) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target) -> None:  # type: ignore[no-untyped-def]
        try:
            target()
        except BaseException as exc:  # collected: a thread's error must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_appends_compactions_and_reads_in_threads_lose_nothing(tmp_path: Path):
    """Four writers append 25 small segments each while two compactors merge and a reader reads."""
    directory = tmp_path / "store"
    VectorStore(directory, MODEL, DIM)
    writing = threading.Event()
    writers_left = [4]
    lock = threading.Lock()

    def writer(start: int):  # type: ignore[no-untyped-def]
        def run() -> None:
            store = VectorStore(directory, MODEL, DIM)  # each its own, as each ingest run has
            try:
                for batch in range(25):
                    ids = np.arange(start + batch * 8, start + batch * 8 + 8, dtype=np.int64)
                    store.append(ids, _vectors(ids))
                    writing.set()
            finally:
                with lock:
                    writers_left[0] -= 1

        return run

    def compactor(mode: str):  # type: ignore[no-untyped-def]
        def run() -> None:
            store = VectorStore(directory, MODEL, DIM)
            writing.wait(10)
            while writers_left[0]:
                store.compact(mode)

        return run

    def reader() -> None:
        store = VectorStore(directory, MODEL, DIM)
        writing.wait(10)
        while writers_left[0]:
            live = store.live_ids()
            found, vectors = store.vectors_of(live)
            assert found.all() and np.array_equal(vectors[:, 0], live.astype(np.float32))

    writers = [writer(n * 10_000) for n in range(4)]
    errors = _run_threads([*writers, compactor("full"), compactor("tail"), reader])
    assert errors == []
    store = VectorStore(directory, MODEL, DIM)
    expected = np.concatenate([np.arange(n * 10_000, n * 10_000 + 200) for n in range(4)])
    assert np.array_equal(store.live_ids(), expected)
    found, vectors = store.vectors_of(expected)
    assert found.all() and np.array_equal(vectors[:, 0], expected.astype(np.float32))
    assert not list(directory.glob(".*.tmp"))


WRITER = """
import sys
import numpy as np
from pathlib import Path
from index.vector_store import VectorStore
directory, start, compact = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "compact"
store = VectorStore(directory, "concurrency-test", 8)
for batch in range(30):
    ids = np.arange(start + batch * 5, start + batch * 5 + 5, dtype=np.int64)
    store.append(ids, np.stack([np.full(8, float(i), np.float32) for i in ids]))
    if compact and batch % 3 == 2:
        store.compact("full" if batch % 2 else "tail")
"""


def test_appends_and_compactions_in_processes_lose_nothing(tmp_path: Path):
    directory = tmp_path / "store"
    VectorStore(directory, MODEL, DIM)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory), str(n * 1000), "compact" if n % 2 else "append"],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    store = VectorStore(directory, MODEL, DIM)
    expected = np.concatenate([np.arange(n * 1000, n * 1000 + 150) for n in range(3)])
    assert np.array_equal(store.live_ids(), expected)
    found, vectors = store.vectors_of(expected)
    assert found.all() and np.array_equal(vectors[:, 0], expected.astype(np.float32))


def test_locks_exclude_threads_of_one_process(tmp_path: Path):
    """flock belongs to an open file, not a process: a second thread's try is refused too."""
    path = tmp_path / "a.lock"
    with exclusive_lock(path):
        outcome: list[str] = []

        def attempt() -> None:
            try:
                with shared_lock(path, wait=False):
                    outcome.append("got it")
            except LockHeld:
                outcome.append("held")

        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join()
        assert outcome == ["held"]
    with shared_lock(path), shared_lock(path, wait=False):  # shared holders side by side
        pass


def test_orphans_are_judged_only_by_a_run_that_starts_alone(tmp_path: Path):
    store = VectorStore(tmp_path / "store", MODEL, DIM)
    judged: list[str] = []
    with store.run_in_flight(lambda: judged.append("first")) as alone:
        assert alone
        with store.run_in_flight(lambda: judged.append("second")) as second_alone:
            assert not second_alone  # the first may have vectors whose products are not committed yet
    with store.run_in_flight(lambda: judged.append("third")) as alone:
        assert alone
    assert judged == ["first", "third"]


HOLDER = """
import sys, time
from pathlib import Path
from index.file_lock import in_flight
with in_flight(Path(sys.argv[1])):
    print("in flight", flush=True)
    time.sleep(120)
"""


def test_a_killed_run_blocks_nobody(tmp_path: Path):
    """A run killed with SIGKILL leaves no registration behind: the kernel dropped its lock."""
    store = VectorStore(tmp_path / "store", MODEL, DIM)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.directory / RUNS_LOCK)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "in flight"
        with in_flight(store.directory / RUNS_LOCK) as alone:
            assert not alone
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    started = time.monotonic()
    with store.run_in_flight(lambda: None) as alone:
        assert alone
    assert time.monotonic() - started < 5


def test_publishes_and_appends_side_by_side_leave_a_whole_saved_index(tmp_path: Path):
    """Two ingests each end with `publish_index` while the other still writes: one publish at a time,
    and the saved index, with the segments after it replayed, holds every vector."""
    workspace = Workspace(tmp_path / "home")
    directory = workspace.vectors_dir(MODEL)
    VectorStore(directory, MODEL, DIM)

    def ingest(start: int):  # type: ignore[no-untyped-def]
        def run() -> None:
            store = VectorStore(directory, MODEL, DIM)
            for batch in range(10):
                ids = np.arange(start + batch * 10, start + batch * 10 + 10, dtype=np.int64)
                store.append(ids, _vectors(ids))
                if batch % 4 == 3:
                    publish_index(workspace, MODEL, DIM)
            publish_index(workspace, MODEL, DIM)

        return run

    assert _run_threads([ingest(0), ingest(50_000), ingest(90_000)]) == []
    store = VectorStore(directory, MODEL, DIM)
    assert store.count() == 300
    index_dir = workspace.index_dir(MODEL)
    manifest = read_manifest(index_dir)
    assert manifest["extra"]["store_segment"] <= store.last_segment
    index = load_index(index_dir, expected_model_id=MODEL, expected_dim=DIM)
    try:
        assert len(index) == 300
    finally:
        index.close()


@pytest.mark.parametrize("mode", ["full", "tail"])
def test_compaction_leaves_appends_made_meanwhile_in_charge(tmp_path: Path, mode: str):
    """An append that lands while a merge is written comes after the merged range and stays."""
    store = VectorStore(tmp_path / "store", MODEL, DIM)
    for start in range(0, 40, 10):
        ids = np.arange(start, start + 10, dtype=np.int64)
        store.append(ids, _vectors(ids))
    other = VectorStore(tmp_path / "store", MODEL, DIM)
    original = store._merge_winners

    def merge_then_append(*args, **kwargs):  # type: ignore[no-untyped-def]
        chosen = original(*args, **kwargs)
        late = np.arange(100, 105, dtype=np.int64)
        other.append(late, _vectors(late))  # another writer's segment, mid-compaction
        return chosen

    store._merge_winners = merge_then_append  # type: ignore[method-assign]
    assert store.compact(mode)["compacted"]
    assert np.array_equal(VectorStore(tmp_path / "store", MODEL, DIM).live_ids(), [*range(40), *range(100, 105)])


def test_an_append_landing_while_the_sweep_lists_the_folder_stays(tmp_path: Path):
    """The sweep before a compaction lists the files in charge, then deletes files not among them: an
    append elsewhere must not land between the two listings (it waits for the sweep instead)."""
    store = VectorStore(tmp_path / "store", MODEL, DIM)
    for start in (0, 10):
        ids = np.arange(start, start + 10, dtype=np.int64)
        store.append(ids, _vectors(ids))
    other = VectorStore(tmp_path / "store", MODEL, DIM)
    late = np.arange(100, 105, dtype=np.int64)
    appender = threading.Thread(target=lambda: other.append(late, _vectors(late)))
    listed = store.segments

    def list_then_let_another_append():  # type: ignore[no-untyped-def]
        found = listed()
        if not appender.is_alive() and appender.ident is None:
            appender.start()
            appender.join(timeout=1.0)  # before the fix it landed here; with it, it waits for the lock
        return found

    store.segments = list_then_let_another_append  # type: ignore[method-assign]
    store.compact("full")
    appender.join(timeout=30)
    assert not appender.is_alive()
    assert np.array_equal(VectorStore(tmp_path / "store", MODEL, DIM).live_ids(), [*range(20), *range(100, 105)])


def test_writers_creating_a_new_store_at_once_all_open_it(tmp_path: Path):
    """The first ingests of a new model start together: one writes store.json, none fails on it."""
    directory = tmp_path / "store"
    ready = threading.Barrier(8)

    def create() -> None:
        ready.wait(10)
        VectorStore(directory, MODEL, DIM).append([threading.get_ident() % 10**9], _vectors(np.asarray([1])))

    assert _run_threads([create] * 8) == []
    assert VectorStore.open(directory).stored_rows() == 8


def test_a_view_as_of_a_segment_leaves_later_appends_out(tmp_path: Path):
    """What a publish streams: the rows it counted, not those another writer appends meanwhile."""
    store = VectorStore(tmp_path / "store", MODEL, DIM)
    first = np.arange(10, dtype=np.int64)
    store.append(first, _vectors(first))
    view = store.as_of(store.last_segment)
    later = np.arange(10, 20, dtype=np.int64)
    store.append(later, _vectors(later))
    assert view.count() == 10 and np.array_equal(view.live_ids(), first)
    assert sum(len(batch.ids) for batch in view.scan()) == 10
    assert store.count() == 20
    with pytest.raises(ValueError, match="read-only"):
        view.append(later, _vectors(later))

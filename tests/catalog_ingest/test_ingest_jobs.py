"""The catalog upload queue (catalog_ingest/jobs.py) on a real SQLite database with the real ingest:
one job per vendor at a time, different vendors side by side, a job whose lease ran out run again to
the end, a bad row in the reject report, an unknown format failing the job with a clear message."""

from __future__ import annotations

import csv
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from upload_support import catalog_zip, renamed_headers

from catalog.db import IngestJob, Product, Vendor, make_engine, session_factory
from catalog.workspace import Workspace
from catalog_ingest import jobs
from index.vector_store import VectorStore
from vision.embedder import open_embedder


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "home")


@pytest.fixture
def sessions(workspace: Workspace):
    engine = make_engine(workspace.database_url)
    yield session_factory(engine)
    engine.dispose()


def _vendor(sessions, name: str) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        vendor = Vendor(name=name)
        session.add(vendor)
        session.commit()
        return vendor.id


def _queue(sessions, workspace: Workspace, vendor_id: int, archive: Path, **kwargs) -> int:  # type: ignore[no-untyped-def]
    with archive.open("rb") as source:
        upload = jobs.save_upload(workspace, source, archive.name)
    return jobs.submit(sessions, vendor_id, upload, archive.name, **kwargs)


def _products(sessions, vendor_id: int) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Product).where(Product.vendor_id == vendor_id))


def test_one_job_per_vendor_at_a_time_in_order_and_other_vendors_not_held_up(
    tmp_path, workspace, sessions, embedder
) -> None:
    acme, globex = _vendor(sessions, "acme"), _vendor(sessions, "globex")
    first = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a1", 6))
    second = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a2", 4, start=6))
    other = _queue(sessions, workspace, globex, catalog_zip(tmp_path / "g", 5, start=100))

    assert jobs.claim_next(sessions, "me") == first
    assert jobs.claim_next(sessions, "me") == other  # globex is not held up by acme's queue
    assert jobs.claim_next(sessions, "me") is None  # acme's second file waits for its first
    assert jobs.job_of(sessions, acme, second).status == "queued"
    assert jobs.run_job(sessions, workspace, embedder, first, "me") == "done"
    assert jobs.claim_next(sessions, "me") == second  # acme's turn again, in the order sent
    assert jobs.run_job(sessions, workspace, embedder, second, "me") == "done"
    assert jobs.run_job(sessions, workspace, embedder, other, "me") == "done"
    view = jobs.job_of(sessions, acme, second)
    assert (view.status, view.rows_total, view.rows_done, view.accepted, view.rejected) == ("done", 4, 4, 4, 0)
    assert (_products(sessions, acme), _products(sessions, globex)) == (10, 5)
    with pytest.raises(jobs.JobNotFound):
        jobs.job_of(sessions, globex, second)  # another vendor's job is not found


def test_jobs_of_two_vendors_run_side_by_side(tmp_path, workspace, sessions, embedder) -> None:
    """The runner leases two vendors' jobs at once and runs them in two threads: both are seen
    running at the same moment, each completes, and neither loses the other's vectors."""
    acme, globex = _vendor(sessions, "acme"), _vendor(sessions, "globex")
    first = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a", 300))
    other = _queue(sessions, workspace, globex, catalog_zip(tmp_path / "g", 300, start=1000))
    overlapped = False
    runner = jobs.JobRunner(sessions, workspace, lambda: embedder, workers=2, poll_s=0.05).start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = {jobs.job_of(sessions, acme, first).status, jobs.job_of(sessions, globex, other).status}
            overlapped = overlapped or states == {"running"}
            if states <= {"done", "failed"}:
                break
            time.sleep(0.02)
    finally:
        runner.stop()
    assert jobs.job_of(sessions, acme, first).status == jobs.job_of(sessions, globex, other).status == "done"
    assert overlapped, "the two vendors' jobs never ran at the same time"
    assert (_products(sessions, acme), _products(sessions, globex)) == (300, 300)
    store = VectorStore(
        workspace.vectors_dir(embedder.manifest.model_id), embedder.manifest.model_id, embedder.manifest.embed_dim
    )
    assert len(store.live_ids()) == 600  # every product's vector, none overwritten by the other run


def test_a_job_whose_lease_ran_out_is_run_again_and_completes(tmp_path, workspace, sessions, embedder) -> None:
    acme = _vendor(sessions, "acme")
    job_id = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a", 7))
    with sessions() as session:  # as a process on another machine leaves it when it dies mid-run
        job = session.get(IngestJob, job_id)
        job.status, job.lease_owner, job.attempts = "running", "dead-host:1:x", 1
        job.lease_until = datetime.now(UTC) - timedelta(seconds=5)
        job.rows_done = 3
        session.commit()

    runner = jobs.JobRunner(sessions, workspace, lambda: embedder, workers=2, poll_s=0.05).start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=90)
        while jobs.job_of(sessions, acme, job_id).status != "done" and datetime.now(UTC) < deadline:
            threading.Event().wait(0.1)
    finally:
        runner.stop()
    view = jobs.job_of(sessions, acme, job_id)
    assert (view.status, view.rows_done, view.accepted) == ("done", 7, 7), view
    assert _products(sessions, acme) == 7
    with sessions() as session:
        job = session.get(IngestJob, job_id)
        assert job.attempts == 2 and job.lease_owner is None


def test_a_run_whose_lease_a_newer_claim_took_stops_and_leaves_the_job_to_it(
    tmp_path, workspace, sessions, embedder
) -> None:
    """A run that lost its lease while alive (its heartbeat could not reach the database for a whole
    lease) and whose job a newer claim took stops at its next batch without writing the job's end or
    deleting the upload: before per-claim owners both runs went on, and the first to end deleted the
    file the other was reading."""
    acme = _vendor(sessions, "acme")
    job_id = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a", 600))
    assert jobs.claim_next(sessions, "host:1:aa:1", lease_s=0.6) == job_id
    outcome: list[str] = []
    old_run = threading.Thread(
        target=lambda: outcome.append(jobs.run_job(sessions, workspace, embedder, job_id, "host:1:aa:1", lease_s=0.6))
    )
    old_run.start()
    deadline = time.monotonic() + 60
    while jobs.job_of(sessions, acme, job_id).rows_done == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with sessions() as session:  # what claim_next does once the lease has lapsed
        job = session.get(IngestJob, job_id)
        assert job.status == "running" and job.rows_done < 600
        job.status, job.lease_owner = "queued", "host:2:bb:1"
        job.lease_until = datetime.now(UTC) + timedelta(seconds=60)
        session.commit()
    old_run.join(timeout=120)
    assert outcome == ["lost"]
    with sessions() as session:
        job = session.get(IngestJob, job_id)
        assert (job.lease_owner, job.finished_at) == ("host:2:bb:1", None)  # untouched by the old run
        upload = Path(job.upload_path)
    assert upload.is_file(), "the old run deleted the upload the newer claim reads"

    assert jobs.run_job(sessions, workspace, embedder, job_id, "host:2:bb:1") == "done"
    view = jobs.job_of(sessions, acme, job_id)
    assert (view.status, view.rows_done, view.accepted) == ("done", 600, 600)
    assert _products(sessions, acme) == 600 and not upload.exists()


def test_the_runner_never_claims_again_a_job_it_is_running(tmp_path, workspace, sessions) -> None:
    acme = _vendor(sessions, "acme")
    job_id = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a", 3))
    assert jobs.claim_next(sessions, "host:1:aa:1", lease_s=0.0) == job_id  # a lease that lapsed at once
    assert jobs.claim_next(sessions, "host:1:aa:2", skip={job_id}) is None  # still running here
    assert jobs.claim_next(sessions, "host:2:bb:1") == job_id  # another process takes it over


def test_a_live_lease_is_not_taken(tmp_path, workspace, sessions) -> None:
    acme = _vendor(sessions, "acme")
    job_id = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a", 2))
    assert jobs.claim_next(sessions, "one") == job_id
    assert jobs.claim_next(sessions, "two") is None  # leased by "one" and not expired


def test_bad_rows_go_to_the_report_and_good_ones_in(tmp_path, workspace, sessions, embedder) -> None:
    acme = _vendor(sessions, "acme")
    job_id = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a", 5, bad_rows=2))
    assert jobs.claim_next(sessions, "me") == job_id
    assert jobs.run_job(sessions, workspace, embedder, job_id, "me") == "done"
    view = jobs.job_of(sessions, acme, job_id)
    assert (view.rows_done, view.accepted, view.rejected, view.has_report) == (7, 5, 2, True)
    with jobs.report_of(sessions, acme, job_id).open() as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["sku"], r["field"]) for r in rejects] == [("SKU-00005", "price"), ("SKU-00006", "price")]
    assert all(r["reason"] for r in rejects)
    assert _products(sessions, acme) == 5
    with sessions() as session:  # the uploaded catalog is gone once ingested; the report stays
        assert not Path(session.get(IngestJob, job_id).upload_path).exists()


def test_a_file_of_unknown_format_fails_the_job_with_a_clear_error(tmp_path, workspace, sessions, embedder) -> None:
    acme = _vendor(sessions, "acme")
    odd = tmp_path / "catalog.xlsx"
    odd.write_bytes(b"PK not really a spreadsheet")
    job_id = _queue(sessions, workspace, acme, odd)
    assert jobs.claim_next(sessions, "me") == job_id
    assert jobs.run_job(sessions, workspace, embedder, job_id, "me") == "failed"
    view = jobs.job_of(sessions, acme, job_id)
    assert view.status == "failed"
    assert "Unknown catalog format '.xlsx'" in (view.error or "")
    assert jobs.claim_next(sessions, "me") is None  # a failed job is not retried


def test_a_job_that_fails_however_it_fails_leaves_no_upload_behind(
    tmp_path, workspace, sessions, embedder, monkeypatch
) -> None:
    acme = _vendor(sessions, "acme")

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs, "ingest_catalog", crash)
    crashed = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "c", 3))
    assert jobs.claim_next(sessions, "me") == crashed
    assert jobs.run_job(sessions, workspace, embedder, crashed, "me") == "failed"
    assert "internal error (RuntimeError)" in (jobs.job_of(sessions, acme, crashed).error or "")
    tired = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "t", 3))
    assert jobs.claim_next(sessions, "me") == tired
    with sessions() as session:
        session.get(IngestJob, tired).attempts = jobs.MAX_ATTEMPTS + 1
        session.commit()
    assert jobs.run_job(sessions, workspace, embedder, tired, "me") == "failed"
    with sessions() as session:
        uploads = [
            Path(j.upload_path) for j in session.scalars(select(IngestJob).where(IngestJob.id.in_([crashed, tired])))
        ]
    assert uploads and not any(path.exists() for path in uploads)  # up to 4 GB each: never kept after a failure


def test_a_saved_mapping_reads_a_file_with_other_headers(tmp_path, workspace, sessions, embedder) -> None:
    acme = _vendor(sessions, "acme")
    archive = catalog_zip(tmp_path / "a", 3)
    renamed = renamed_headers(archive, tmp_path / "renamed.zip", {"sku": "article", "title": "name"})
    toml = jobs.mapping_toml({"sku": "article", "title": "name"})
    jobs.save_mapping(sessions, acme, "my shop", toml)
    assert jobs.saved_mappings(sessions, acme) == ["my shop"]
    job_id = _queue(sessions, workspace, acme, renamed, mapping_name="my shop")
    assert jobs.claim_next(sessions, "me") == job_id
    assert jobs.run_job(sessions, workspace, embedder, job_id, "me") == "done"
    assert _products(sessions, acme) == 3
    with pytest.raises(jobs.CatalogError, match="No saved mapping called 'nope'"):
        _queue(sessions, workspace, acme, renamed, mapping_name="nope")


def test_an_upload_abandoned_on_the_mapping_form_is_cleared_after_a_day(tmp_path, workspace) -> None:
    source = tmp_path / "theirs.csv"
    source.write_text("article,name\nA1,Lamp\n")
    with source.open("rb") as handle:
        upload = jobs.save_upload(workspace, handle, "theirs.csv")
    meta = upload.parent / "staged.json"
    meta.write_text("{}")
    assert jobs.clear_abandoned(workspace) == []  # fresh: the vendor may still be choosing
    old = time.time() - 2 * 24 * 3600
    os.utime(meta, (old, old))
    assert jobs.clear_abandoned(workspace) == [upload.parent.name]
    assert not upload.parent.exists()


def test_a_job_stopped_by_a_shutdown_is_queued_again_and_finished_by_the_next_runner(
    tmp_path, workspace, sessions, embedder
) -> None:
    acme = _vendor(sessions, "acme")
    job_id = _queue(sessions, workspace, acme, catalog_zip(tmp_path / "a", 400))
    runner = jobs.JobRunner(sessions, workspace, lambda: embedder, workers=1, poll_s=0.05).start()
    try:
        deadline = time.monotonic() + 60
        while jobs.job_of(sessions, acme, job_id).status != "running" and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        runner.stop()  # as the app's shutdown does: the job stops after its batch
    view = jobs.job_of(sessions, acme, job_id)
    assert view.status == "queued" and view.rows_done < 400, view
    with sessions() as session:
        assert session.get(IngestJob, job_id).lease_owner is None

    runner = jobs.JobRunner(sessions, workspace, lambda: embedder, workers=1, poll_s=0.05).start()
    try:
        deadline = time.monotonic() + 120
        while jobs.job_of(sessions, acme, job_id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    view = jobs.job_of(sessions, acme, job_id)
    assert (view.status, view.rows_done, view.accepted) == ("done", 400, 400)
    assert _products(sessions, acme) == 400


def test_two_runners_on_one_queue_run_each_job_once(tmp_path, workspace, sessions, embedder) -> None:
    """Two runners (as two web processes on one database would have) share the queue: every job is
    leased by one of them only, runs once, and one vendor's jobs still run one at a time in order."""
    vendors = [_vendor(sessions, name) for name in ("acme", "globex", "initech")]
    queued = [
        _queue(sessions, workspace, vendor, catalog_zip(tmp_path / f"{vendor}-{n}", 40, start=1000 * vendor + 100 * n))
        for n in range(2)
        for vendor in vendors
    ]
    runners = [jobs.JobRunner(sessions, workspace, lambda: embedder, workers=2, poll_s=0.05).start() for _ in range(2)]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with sessions() as session:
                states = session.scalars(select(IngestJob.status).where(IngestJob.id.in_(queued))).all()
            if set(states) <= {"done", "failed"}:
                break
            time.sleep(0.1)
    finally:
        for runner in runners:
            runner.stop()
    with sessions() as session:
        ran = session.execute(
            select(IngestJob.id, IngestJob.vendor_id, IngestJob.status, IngestJob.attempts, IngestJob.started_at)
            .where(IngestJob.id.in_(queued))
            .order_by(IngestJob.id)
        ).all()
    assert [(status, attempts) for _, _, status, attempts, _ in ran] == [("done", 1)] * len(queued)
    for vendor in vendors:
        first, second = [started for _, owner, _, _, started in ran if owner == vendor]
        assert first <= second  # in the order sent
        assert _products(sessions, vendor) == 80

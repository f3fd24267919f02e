"""Catalog uploads as durable background jobs: the queue on `ingest_jobs`, and the runner that works it.

A vendor's upload (browser or API) is kept privately in the data folder and recorded as a `queued`
job with its mapping and `--sync`, so nothing is lost when the server restarts. The runner, started
with the web app, leases the oldest queued job of a vendor that has no job running, at most
`workers` at once (different vendors side by side; one vendor's jobs one at a time, in order, so a
later file never races an earlier one). While a job runs its lease is renewed by a heartbeat and its
progress (rows, images, accepted, rejected) is written after every batch, which the page and the API
turn into a rate and an ETA. A job whose process died is run again: the kernel drops its run lock,
which `catalog.leftovers` notices and queues it again, and on another machine its lease simply runs
out. Running a job again is safe because ingest is idempotent (deterministic ids, upserts).

Each claim has an owner of its own, so a run whose lease ran out while it was still alive (its
heartbeat could not reach the database for a whole lease, or the clock jumped) and was taken by a
newer claim notices it at its next heartbeat, stops at its next batch and writes nothing more: the
job's end, its counts and its upload belong to the newer claim alone.
"""

from __future__ import annotations

import csv
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import and_, exists, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import IngestJob, SavedMapping, Vendor
from catalog.leftovers import clean_leftovers
from catalog.private_files import FILE_MODE, private_folder
from catalog.workspace import Workspace
from catalog_ingest.errors import CatalogError
from catalog_ingest.ingest import IngestOptions, IngestSummary, ingest_catalog
from catalog_ingest.mapping import ColumnMapping
from catalog_ingest.readers import count_records, open_catalog
from index.vector_store import VectorStore
from vision.embedder import Embedder

log = logging.getLogger("vitrine.ingest_jobs")

LEASE_S = 60.0  # a running job's lease; renewed every third of it while the job lives
MAX_ATTEMPTS = 3  # a file that kills its process every time stops being retried
PROGRESS_EVERY_S = 0.5
REPORT_FIELDS = ("row", "line", "sku", "field", "reason")


class JobNotFound(LookupError):
    """No such job for this vendor (another vendor's job is not found either)."""


class StopRequested(Exception):
    """The runner is shutting down: the job stops at the next batch and is queued again."""


class LeaseLost(Exception):
    """Another claim holds the job now: this run stops at the next batch and leaves the job to it."""


def uploads_dir(workspace: Workspace) -> Path:
    """Where uploaded catalogs and reject reports live: private, like the rest of the data folder."""
    return private_folder(workspace.home / "ingest-uploads")


def save_upload(workspace: Workspace, source: BinaryIO, file_name: str) -> Path:
    """Copy an uploaded file (a stream, never read whole) into a private folder of its own; the
    original suffix is kept because the readers choose the format by it."""
    folder = private_folder(uploads_dir(workspace) / secrets.token_hex(12))
    suffix = "".join(Path(file_name).suffixes[-1:]).lower()[:12]
    target = folder / f"catalog{suffix}"
    with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    return target


def discard_upload(path: Path) -> None:
    """Remove an upload's folder (the file and anything beside it)."""
    if path.parent.parent.name == "ingest-uploads":  # only a folder save_upload made
        shutil.rmtree(path.parent, ignore_errors=True)


def file_headers(path: Path) -> list[str]:
    """The columns of an uploaded catalog, read from its header (CSV/JSONL/Parquet, or inside a zip)."""
    opened = open_catalog(path)
    try:
        return list(opened.headers)
    finally:
        opened.close()


def mapping_for(session: Session, vendor_id: int, name: str) -> SavedMapping:
    """The vendor's saved mapping called `name`; `CatalogError` naming the saved ones otherwise."""
    found = session.scalar(select(SavedMapping).where(SavedMapping.vendor_id == vendor_id, SavedMapping.name == name))
    if found is None:
        names = session.scalars(select(SavedMapping.name).where(SavedMapping.vendor_id == vendor_id)).all()
        raise CatalogError(f"No saved mapping called {name!r}; saved: {', '.join(names) or 'none'}.")
    return found


def save_mapping(sessions: sessionmaker, vendor_id: int, name: str, toml: str) -> None:
    """Keep `toml` as the vendor's mapping `name` (replacing one of that name)."""
    ColumnMapping.parse(toml, name)  # never save what the runner could not read
    with sessions() as session:
        found = session.scalar(
            select(SavedMapping).where(SavedMapping.vendor_id == vendor_id, SavedMapping.name == name)
        )
        if found is None:
            session.add(SavedMapping(vendor_id=vendor_id, name=name, toml=toml))
        else:
            found.toml = toml
        session.commit()


def saved_mappings(sessions: sessionmaker, vendor_id: int) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(SavedMapping.name).where(SavedMapping.vendor_id == vendor_id).order_by(SavedMapping.name)
            )
        )


def mapping_toml(columns: dict[str, str], constants: dict[str, str] | None = None) -> str:
    """A mapping's TOML from a form: field → the file's column, and field → a constant value."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[columns]"]
    lines += [f"{field} = {quoted(column)}" for field, column in columns.items() if column]
    if constants:
        lines += ["", "[constants]"]
        lines += [f"{field} = {quoted(value)}" for field, value in constants.items() if value]
    return "\n".join(lines) + "\n"


def submit(
    sessions: sessionmaker,
    vendor_id: int,
    upload: Path,
    file_name: str,
    *,
    mapping_name: str = "",
    mapping_text: str = "",
    sync: bool = False,
    requested_by: int | None = None,
    wake: Callable[[], None] | None = None,
) -> int:
    """Queue the upload at `upload` (already private, see `save_upload`) for the vendor; its id."""
    with sessions() as session:
        if mapping_name and not mapping_text:
            mapping_text = mapping_for(session, vendor_id, mapping_name).toml
        now = datetime.now(UTC)
        job = IngestJob(
            vendor_id=vendor_id,
            catalog=file_name,
            model_id="",
            status="queued",
            started_at=now,
            queued_at=now,
            upload_path=str(upload),
            file_name=file_name[:255],
            mapping_name=mapping_name,
            mapping_toml=mapping_text,
            sync=sync,
            requested_by=requested_by,
        )
        session.add(job)
        session.commit()
        job_id = job.id
    if wake is not None:
        wake()
    return job_id


@dataclass(frozen=True)
class JobView:
    """A job as the page and the API show it."""

    id: int
    status: str
    file_name: str
    sync: bool
    mapping_name: str
    rows_total: int | None
    rows_done: int
    images_done: int
    accepted: int
    rejected: int
    rows_per_s: float | None
    eta_s: float | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    has_report: bool
    summary: dict

    @property
    def percent(self) -> int | None:
        if not self.rows_total:
            return 100 if self.status == "done" else None
        return min(100, round(100 * self.rows_done / self.rows_total))


def _view(job: IngestJob) -> JobView:
    """Rate and ETA from the progress written so far: rows done over the time since the run began."""
    summary = {k: v for k, v in (job.summary or {}).items() if k not in ("run_lock", "rejects")}
    rows_done, accepted, rejected = job.rows_done or 0, job.accepted or 0, job.rejected or 0
    rows_total = job.rows_total
    if not job.upload_path and "rows" in summary:  # a command-line run: its counts are in its summary
        rows_done, rejected = int(summary["rows"]), int(summary.get("rejected", 0))
        accepted = sum(int(summary.get(k, 0)) for k in ("accepted", "updated", "unchanged"))
        rows_total = rows_done
    rate = eta = None
    if job.status == "running" and job.progress_at is not None and job.started_at is not None and rows_done:
        elapsed = (_aware(job.progress_at) - _aware(job.started_at)).total_seconds()
        if elapsed > 0:
            rate = rows_done / elapsed
            if rows_total:
                eta = max(0.0, (rows_total - rows_done) / rate)
    elif job.status == "done" and job.finished_at is not None and job.started_at is not None:
        elapsed = (_aware(job.finished_at) - _aware(job.started_at)).total_seconds()
        rate = rows_done / elapsed if elapsed > 0 else None
        eta = 0.0
    # The ingest marks its job done as it returns; the runner still writes the report and the final
    # counts, and lets the lease go last: until then the job is shown running.
    status = "running" if job.status == "done" and job.lease_owner else job.status
    return JobView(
        id=job.id,
        status=status,
        file_name=job.file_name or Path(job.catalog).name,
        sync=bool(job.sync),
        mapping_name=job.mapping_name or "",
        rows_total=rows_total,
        rows_done=rows_done,
        images_done=job.images_done or int(summary.get("images_embedded", 0)),
        accepted=accepted,
        rejected=rejected,
        rows_per_s=round(rate, 2) if rate is not None else None,
        eta_s=round(eta, 1) if eta is not None else None,
        queued_at=_aware(job.queued_at) if job.queued_at else None,
        started_at=_aware(job.started_at) if job.started_at and job.status != "queued" else None,
        finished_at=_aware(job.finished_at) if job.finished_at else None,
        error=job.error,
        has_report=bool(job.report_path),
        summary=summary,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def job_of(sessions: sessionmaker, vendor_id: int, job_id: int) -> JobView:
    """The vendor's job `job_id`; `JobNotFound` for a missing job and for another vendor's alike."""
    with sessions() as session:
        job = session.get(IngestJob, job_id)
        if job is None or job.vendor_id != vendor_id:
            raise JobNotFound(job_id)
        return _view(job)


def jobs_of(sessions: sessionmaker, vendor_id: int, limit: int = 20) -> list[JobView]:
    """The vendor's latest jobs, newest first (command-line runs included)."""
    with sessions() as session:
        found = session.scalars(
            select(IngestJob).where(IngestJob.vendor_id == vendor_id).order_by(IngestJob.id.desc()).limit(limit)
        )
        return [_view(job) for job in found]


def report_of(sessions: sessionmaker, vendor_id: int, job_id: int) -> Path:
    """The reject report (CSV) of the vendor's finished job; `JobNotFound` if it has none."""
    with sessions() as session:
        job = session.get(IngestJob, job_id)
        if job is None or job.vendor_id != vendor_id or not job.report_path or not Path(job.report_path).is_file():
            raise JobNotFound(job_id)
        return Path(job.report_path)


# --- the runner -------------------------------------------------------------------------------------


def _vendor_busy(now: datetime):  # type: ignore[no-untyped-def]
    """SQL: the job's vendor has a job under way (a live lease, or a command-line run)."""
    other = IngestJob.__table__.alias("other")
    return exists().where(
        other.c.vendor_id == IngestJob.vendor_id,
        other.c.id != IngestJob.id,
        or_(
            and_(other.c.status == "running", or_(other.c.lease_until.is_(None), other.c.lease_until >= now)),
            and_(other.c.status == "queued", other.c.lease_until.is_not(None), other.c.lease_until >= now),
        ),
    )


def _earlier_job_waiting():  # type: ignore[no-untyped-def]
    """SQL: the job's vendor has an older upload not finished yet. Only a vendor's oldest unfinished
    upload may be leased, so its files run in the order sent even when several runners (processes)
    race for the queue: the busy check alone let a runner that lost a race for the older job take
    the newer one."""
    other = IngestJob.__table__.alias("earlier")
    return exists().where(
        other.c.vendor_id == IngestJob.vendor_id,
        other.c.id < IngestJob.id,
        other.c.upload_path.is_not(None),
        other.c.status.in_(("queued", "running")),
    )


def claim_next(sessions: sessionmaker, owner: str, lease_s: float = LEASE_S, skip: Collection[int] = ()) -> int | None:
    """Lease the oldest job that may run now; its id, or None. A job is runnable when it is queued
    (or was running under a lease that ran out), its vendor has nothing else under way and no older
    upload waiting (`_earlier_job_waiting`). The lease
    is taken by a conditional update, so two processes never take the same job. `owner` names this
    claim (one per claim, see the module's note); `skip`: jobs the caller is running itself, never
    taken again while their run lives, even if their lease ran out."""
    now = datetime.now(UTC)
    with sessions() as session:
        candidates = session.scalars(
            select(IngestJob.id)
            .where(
                IngestJob.upload_path.is_not(None),
                IngestJob.id.not_in(list(skip)) if skip else true(),
                or_(
                    and_(
                        IngestJob.status == "queued", or_(IngestJob.lease_until.is_(None), IngestJob.lease_until < now)
                    ),
                    and_(IngestJob.status == "running", IngestJob.lease_until < now),
                ),
                ~_vendor_busy(now),
                ~_earlier_job_waiting(),
            )
            .order_by(IngestJob.id)
            .limit(8)
        ).all()
        for job_id in candidates:
            taken = session.execute(
                update(IngestJob)
                .where(
                    IngestJob.id == job_id,
                    or_(IngestJob.lease_until.is_(None), IngestJob.lease_until < now),
                    IngestJob.status.in_(("queued", "running")),
                )
                .values(
                    status="queued",
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_s),
                    attempts=IngestJob.attempts + 1,
                    started_at=now,
                    error=None,
                )
            )
            session.commit()
            if taken.rowcount != 1:
                continue
            # Another process may have leased a job of the same vendor between the look and the
            # lease: then this one gives its lease back and waits for the next round.
            if session.scalar(select(_vendor_busy(now)).where(IngestJob.id == job_id)):
                session.execute(
                    update(IngestJob)
                    .where(IngestJob.id == job_id, IngestJob.lease_owner == owner)
                    .values(lease_owner=None, lease_until=None, attempts=IngestJob.attempts - 1)
                )
                session.commit()
                continue
            return job_id
    return None


def clear_abandoned(workspace: Workspace, max_age_s: float = 24 * 3600) -> list[str]:
    """Remove uploads left waiting on the mapping form for longer than `max_age_s` (the vendor went
    away); queued and finished jobs' folders are left alone."""
    removed = []
    root = uploads_dir(workspace)
    for meta in root.glob("*/staged.json"):
        try:
            if time.time() - meta.stat().st_mtime > max_age_s:
                shutil.rmtree(meta.parent, ignore_errors=True)
                removed.append(meta.parent.name)
        except FileNotFoundError:  # taken up meanwhile
            continue
    return removed


class _Heartbeat:
    """Renews a job's lease every third of it until stopped, so a long batch never lets it run out.
    `lost` is set when the lease belongs to another claim now (see the module's note)."""

    def __init__(self, sessions: sessionmaker, job_id: int, owner: str, lease_s: float) -> None:
        self.sessions, self.job_id, self.owner, self.lease_s = sessions, job_id, owner, lease_s
        self.stopped = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"ingest-job-{job_id}-lease", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        while not self.stopped.wait(self.lease_s / 3):
            try:
                with self.sessions() as session:
                    renewed = session.execute(
                        update(IngestJob)
                        .where(IngestJob.id == self.job_id, IngestJob.lease_owner == self.owner)
                        .values(lease_until=datetime.now(UTC) + timedelta(seconds=self.lease_s))
                    )
                    session.commit()
                if renewed.rowcount != 1:
                    log.warning("ingest job %s is leased by another claim now; this run stops", self.job_id)
                    self.lost.set()
                    return
            except Exception:  # a missed beat is retried; the lease is three beats long
                log.warning("could not renew the lease of ingest job %s", self.job_id, exc_info=True)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def public_message(message: str, upload: Path, file_name: str) -> str:
    """A reader's message about an upload with the private path in the data folder replaced by the
    name the vendor sent: where the server keeps files is nobody else's business."""
    return message.replace(str(upload), file_name).replace(str(upload.parent), "the upload")


def write_report(folder: Path, summary: IngestSummary) -> Path:
    """The rejected rows as CSV (row, line, sku, field, reason), private like the upload."""
    path = folder / "rejects.csv"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REPORT_FIELDS))
        writer.writeheader()
        for rejection in summary.rejected:
            row = rejection.to_json()
            writer.writerow({key: row.get(key, "") for key in REPORT_FIELDS})
    return path


def run_job(
    sessions: sessionmaker,
    workspace: Workspace,
    embedder: Embedder,
    job_id: int,
    owner: str,
    *,
    lease_s: float = LEASE_S,
    stop: threading.Event | None = None,
) -> str:
    """Carry out the leased job `job_id`; its final status (`done`, `failed`, or `queued` when stopped)."""
    with sessions() as session:
        job = session.get(IngestJob, job_id)
        if job is None or job.lease_owner != owner:
            return "lost"
        vendor = session.get(Vendor, job.vendor_id)
        upload, sync, toml, attempts = Path(job.upload_path or ""), job.sync, job.mapping_toml, job.attempts
        file_name = job.file_name or upload.name
        vendor_name = vendor.name if vendor else ""
    if attempts > MAX_ATTEMPTS:
        error = f"Stopped after {MAX_ATTEMPTS} attempts that did not finish."
        return _finish(sessions, job_id, owner, "failed", error=error, upload=upload)
    heartbeat = _Heartbeat(sessions, job_id, owner, lease_s)
    last_write = [0.0]

    def on_batch(summary: IngestSummary) -> None:
        if heartbeat.lost.is_set():
            raise LeaseLost
        if stop is not None and stop.is_set():
            raise StopRequested
        now = time.monotonic()
        if now - last_write[0] >= PROGRESS_EVERY_S:
            last_write[0] = now
            _progress(sessions, job_id, owner, summary)

    try:
        mapping = ColumnMapping.parse(toml, "of this job") if toml.strip() else ColumnMapping()
        total = _count_or_none(upload)
        with sessions() as session:
            session.execute(_held(job_id, owner).values(rows_total=total))
            session.commit()
        summary = ingest_catalog(
            upload,
            vendor_name,
            embedder,
            workspace,
            IngestOptions(mapping=mapping, sync=sync, on_batch=on_batch),
            job_id=job_id,
        )
    except LeaseLost:
        return "lost"
    except StopRequested:
        with sessions() as session:
            session.execute(
                _held(job_id, owner).values(
                    status="queued", lease_owner=None, lease_until=None, attempts=IngestJob.attempts - 1
                )
            )
            session.commit()
        return "queued"
    except CatalogError as exc:
        error = public_message(str(exc), upload, file_name)
        return _finish(sessions, job_id, owner, "failed", error=error, upload=upload)
    except Exception as exc:  # logged with its traceback; the vendor is told no more than its kind
        log.exception("ingest job %s failed", job_id)
        error = (
            f"The ingest stopped on an internal error ({type(exc).__name__}); the server's log has the details "
            f"under job {job_id}. Upload the file again, or ask the Vitrine team."
        )
        return _finish(sessions, job_id, owner, "failed", error=error, upload=upload)  # asked to upload again
    finally:
        heartbeat.stop()
    if heartbeat.lost.is_set():  # taken over during the last batch: the newer claim writes the end
        return "lost"
    report = write_report(upload.parent, summary)
    _progress(sessions, job_id, owner, summary)
    return _finish(sessions, job_id, owner, "done", report=report, upload=upload)


def _held(job_id: int, owner: str):  # type: ignore[no-untyped-def]
    """An update of the job that changes nothing once another claim holds it."""
    return update(IngestJob).where(IngestJob.id == job_id, IngestJob.lease_owner == owner)


def _count_or_none(upload: Path) -> int | None:
    """The file's records, for progress and ETA only: a file the quick count cannot read is still
    ingested (the ingest reports its bad rows), just without a total."""
    try:
        return count_records(upload)
    except Exception:  # the count is a nicety; the ingest itself says what is wrong with the file
        log.warning("could not count the records of %s", upload.name, exc_info=True)
        return None


def _progress(sessions: sessionmaker, job_id: int, owner: str, summary: IngestSummary) -> None:
    with sessions() as session:
        session.execute(
            _held(job_id, owner).values(
                rows_done=summary.rows,
                images_done=summary.images_embedded,
                accepted=summary.accepted + summary.updated + summary.unchanged,
                rejected=len({(r.row, r.sku) for r in summary.rejected}),
                progress_at=datetime.now(UTC),
            )
        )
        session.commit()


def _finish(
    sessions: sessionmaker,
    job_id: int,
    owner: str,
    status: str,
    *,
    error: str | None = None,
    report: Path | None = None,
    upload: Path | None = None,
) -> str:
    """Record the end; the uploaded catalog is deleted once done with (the report stays beside it).
    `lost`, with nothing written or deleted, when another claim holds the job now: its run needs the
    upload and writes the end itself."""
    with sessions() as session:
        job = session.get(IngestJob, job_id, with_for_update=True)
        if job is not None and job.lease_owner != owner:
            return "lost"
        if job is not None:
            job.status, job.error = status, error
            job.finished_at = datetime.now(UTC)
            job.lease_owner, job.lease_until = None, None
            if report is not None:
                job.report_path = str(report)
            if job.summary and "run_lock" in job.summary:
                job.summary = {k: v for k, v in job.summary.items() if k != "run_lock"}
            session.commit()
    if upload is not None and upload.is_file():
        upload.unlink(missing_ok=True)
    return status


class JobRunner:
    """Works the queue in the background: one dispatcher thread leasing jobs, `workers` threads
    running them. `wake()` (after a submit) makes the dispatcher look at once instead of at its next
    poll. `stop()` asks running jobs to stop at their next batch; they are queued again."""

    def __init__(
        self,
        sessions: sessionmaker,
        workspace: Workspace,
        embedder_factory: Callable[[], Embedder],
        workers: int = 2,
        poll_s: float = 1.0,
        lease_s: float = LEASE_S,
    ) -> None:
        self.sessions, self.workspace = sessions, workspace
        self.embedder_factory = embedder_factory
        self.workers, self.poll_s, self.lease_s = workers, poll_s, lease_s
        self.owner = f"{os.uname().nodename[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._claims = 0  # each claim's owner is this runner's with the claim's number
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._active: set[int] = set()
        self._active_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ingest-job")
        self._thread = threading.Thread(target=self._dispatch, name="ingest-jobs", daemon=True)

    def start(self) -> JobRunner:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    @property
    def active(self) -> set[int]:
        with self._active_lock:
            return set(self._active)

    def embedder(self) -> Embedder:
        """The runner's embedder, opened at the first job; the model's vector store is made then too,
        once, so jobs that start together never race to create it on a fresh data folder."""
        with self._embedder_lock:
            if self._embedder is None:
                embedder = self.embedder_factory()
                manifest = embedder.manifest
                VectorStore(self.workspace.vectors_dir(manifest.model_id), manifest.model_id, manifest.embed_dim)
                self._embedder = embedder
            return self._embedder

    def _dispatch(self) -> None:
        last_clean = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_clean > 60:  # runs killed since: their jobs are queued again
                    clean_leftovers(self.workspace, self.sessions)
                    clear_abandoned(self.workspace)
                    last_clean = time.monotonic()
                while len(self.active) < self.workers and not self._stop.is_set():
                    self._claims += 1
                    claim = f"{self.owner}:{self._claims}"
                    job_id = claim_next(self.sessions, claim, self.lease_s, skip=self.active)
                    if job_id is None:
                        break
                    with self._active_lock:
                        self._active.add(job_id)
                    self._pool.submit(self._run, job_id, claim)
            except Exception:
                log.exception("the ingest job queue could not be read; trying again")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _run(self, job_id: int, claim: str) -> None:
        try:
            outcome = run_job(
                self.sessions,
                self.workspace,
                self.embedder(),
                job_id,
                claim,
                lease_s=self.lease_s,
                stop=self._stop,
            )
            log.info("ingest job %s: %s", job_id, outcome)
        except Exception:
            log.exception("ingest job %s could not be run", job_id)
        finally:
            with self._active_lock:
                self._active.discard(job_id)
            self._wake.set()  # the vendor's next job may go now

    def stop(self, wait_s: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=wait_s)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._embedder_lock:
            if self._embedder is not None and hasattr(self._embedder, "close"):
                self._embedder.close()
            self._embedder = None

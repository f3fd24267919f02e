"""What a killed ingest (or server) leaves behind, found and cleared at start-up.

An ingest records its job as `running` and keeps scratch files under `<home>/tmp`: the near-duplicate
cells (`near-<pid>-<n>/`) and, in every process that opens the catalog index, a spill file of its
vectors (`vectors-<pid>-<n>.f32`). Killed with -9, it leaves the job `running` forever and the files on
disk. `clean_leftovers` (run by `vitrine serve` and at the start of every ingest) marks such jobs
`failed` with the reason `interrupted` and deletes the files of processes that are gone.

A live ingest is told from a dead one by a lock, not by its pid: each run holds an flock on its own
file (`ingest-<pid>-<n>.lock`, named in the job's summary while it runs), and the kernel drops the
lock when the process dies however it dies. Scratch files carry only a pid, so they are removed when
no process has that pid; the data folder is assumed to be used from one machine (pids of another
machine mean nothing here).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from catalog.db import IngestJob
from catalog.workspace import Workspace
from index.file_lock import LockHeld, exclusive_lock

log = logging.getLogger("vitrine.leftovers")

_SCRATCH = re.compile(r"^(?:near|vectors)-(\d+)-\d+(?:\.f32)?$")
_RUN_LOCK = re.compile(r"^ingest-\d+-\d+\.lock$")
_run_numbers = itertools.count()


@dataclass
class Leftovers:
    """What one clean-up found: jobs marked interrupted, scratch files and folders removed."""

    jobs: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.jobs or self.files)


def scratch_dir(workspace: Workspace) -> Path:
    return workspace.home / "tmp"


@contextlib.contextmanager
def run_lock(workspace: Workspace) -> Iterator[str]:
    """Hold this run's lock for the block; yields the lock file's name, for the job's summary."""
    directory = scratch_dir(workspace)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"ingest-{os.getpid()}-{next(_run_numbers)}.lock"
    try:
        with exclusive_lock(directory / name):
            yield name
    finally:
        (directory / name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _run_alive(directory: Path, lock_name: str | None) -> bool:
    """Whether the run holding `lock_name` still lives (its flock is held)."""
    if not lock_name or not _RUN_LOCK.match(lock_name) or not (directory / lock_name).exists():
        return False
    try:
        with exclusive_lock(directory / lock_name, wait=False):
            return False
    except LockHeld:
        return True


def clean_leftovers(workspace: Workspace, sessions: sessionmaker) -> Leftovers:
    """Mark jobs of dead ingests failed (`interrupted`) and delete dead processes' scratch files."""
    directory = scratch_dir(workspace)
    found = Leftovers(jobs=_interrupt_orphaned_jobs(sessions, directory))
    if directory.is_dir():
        for path in directory.iterdir():
            match = _SCRATCH.match(path.name)
            if match and not _alive(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                found.files.append(path.name)
            elif _RUN_LOCK.match(path.name) and not _run_alive(directory, path.name):
                path.unlink(missing_ok=True)
    if found:
        log.warning(
            "cleared what interrupted runs left: jobs %s marked interrupted, %d scratch files removed",
            found.jobs,
            len(found.files),
        )
    return found


def _interrupt_orphaned_jobs(sessions: sessionmaker, directory: Path) -> list[int]:
    with sessions() as session:
        interrupted = []
        for job in session.scalars(select(IngestJob).where(IngestJob.status == "running")):
            if _run_alive(directory, (job.summary or {}).get("run_lock")):
                continue
            if job.upload_path:  # an upload (catalog_ingest.jobs): queued again, as ingest is idempotent
                job.status, job.lease_owner, job.lease_until = "queued", None, None
                job.summary = {**(job.summary or {}), "run_lock": None}
                interrupted.append(job.id)
                continue
            job.status = "failed"
            job.finished_at = datetime.now(UTC)
            job.summary = {**(job.summary or {}), "error": "interrupted", "run_lock": None}
            interrupted.append(job.id)
        session.commit()
    return interrupted

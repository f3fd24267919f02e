"""Advisory locks between processes (flock): one helper for every "one writer at a time" in a data folder.

flock locks belong to an open file description, not to a process: every call here opens its own
handle, so two threads of one process exclude each other exactly as two processes do (an ingest job
thread of the web app and a `vitrine ingest` in a shell are both kept apart). The kernel drops a
lock when its handle closes, however the process ends (SIGKILL included), so a crash never leaves
a lock held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the lock and the caller chose not to wait."""


def _open(path: Path, folder: bool) -> int:
    return os.open(path, os.O_RDONLY) if folder else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


@contextlib.contextmanager
def _flock(path: Path, mode: int, wait: bool, folder: bool) -> Iterator[None]:
    handle = _open(path, folder)
    try:
        try:
            fcntl.flock(handle, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(str(path)) from None
        yield
    finally:
        os.close(handle)


def exclusive_lock(path: Path, wait: bool = True, folder: bool = False) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive flock on `path` for the block: a lock file, created if missing, or with
    `folder` an existing folder (never created here).

    With `wait=False`, raise `LockHeld` at once when another holder has it. Closing the handle
    releases the lock, so a process that dies never leaves it held."""
    return _flock(path, fcntl.LOCK_EX, wait, folder)


def shared_lock(path: Path, wait: bool = True, folder: bool = False) -> contextlib.AbstractContextManager[None]:
    """Hold a shared flock on `path` for the block: any number of shared holders at once, none while
    someone holds it exclusively (`LockHeld` with `wait=False`)."""
    return _flock(path, fcntl.LOCK_SH, wait, folder)


@contextlib.contextmanager
def in_flight(path: Path, when_alone: Callable[[], None] | None = None) -> Iterator[bool]:
    """Register a run in flight for the block: it holds `path` shared, so any number run side by side.

    `when_alone` is called first if no other run is in flight, while this one holds the lock
    exclusively: the moment to judge what earlier runs left half-done (a run still going may have
    written things it has not committed yet, and must not have them judged as leftovers). Yields
    whether `when_alone` ran. The exclusive lock is only tried, never waited for, so a start never
    waits for other runs to end; a killed run's lock goes with its process."""
    handle = _open(path, folder=False)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        if alone and when_alone is not None:
            when_alone()
        # From exclusive to shared (or straight to shared): waits only for a starting run's `when_alone`.
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield alone
    finally:
        os.close(handle)

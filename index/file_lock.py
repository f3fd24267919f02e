"""Advisory locks between processes (flock): one helper for every "one writer at a time" in a data folder."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the lock and the caller chose not to wait."""


@contextlib.contextmanager
def exclusive_lock(path: Path, wait: bool = True, folder: bool = False) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block: a lock file, created if missing, or with
    `folder` an existing folder (never created here).

    With `wait=False`, raise `LockHeld` at once when another process holds it. Closing the handle
    releases the lock, so a process that dies never leaves it held."""
    handle = os.open(path, os.O_RDONLY) if folder else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(str(path)) from None
        yield
    finally:
        os.close(handle)

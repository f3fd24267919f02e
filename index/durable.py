"""Durable file writes: fsync files and folders, replace files atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a rename is durable only once its folder is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush_handle(handle: IO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old content or the new, never a mix: write aside, fsync, rename, sync the folder."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        flush_handle(handle)
    os.replace(temporary, path)
    fsync_path(path.parent)

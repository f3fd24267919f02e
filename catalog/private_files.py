"""The data folder is private: customer photos, their e-mail addresses, the app's secret and the staff
password hashes live there. The folder is 0700 and the files that matter are 0600 from the moment they
exist (created with that mode, never written first and narrowed after).

A folder or file that already exists, is ours and is open to others (an older release made it with
the default umask) is narrowed when opened; one owned by someone else is left as its owner set it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def _narrow(path: Path, mode: int) -> None:
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        path.chmod(mode)


def private_folder(path: Path) -> Path:
    """`path` made (with its parents) if missing; 0700 when it is ours."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _narrow(path, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` created empty and 0600 if missing (SQLite takes an empty file as a new database); an
    existing one of ours narrowed to 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        _narrow(path, FILE_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """`data` into `path` atomically (written aside, renamed), the file 0600 throughout."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "wb") as out:
        out.write(data)
    os.replace(temporary, path)

"""Where a Vitrine installation keeps its data: one folder (`VITRINE_HOME`, default ./var).

vitrine.db                 the database (or VITRINE_DATABASE_URL)
vectors/<model>/           Parquet vector store per model (the source of truth)
index/<model>/             the FAISS index per model (derived, rebuildable)
images/ab/abcdef....jpg    content-addressed thumbnails
reports/                   ingest reject reports
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from catalog.db import database_url
from catalog.private_files import FILE_MODE, private_folder


def safe_name(name: str) -> str:
    """`name` as one file-name part: anything but letters, digits, `_`, `.` and `-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@dataclass(frozen=True)
class Workspace:
    home: Path

    @classmethod
    def from_env(cls) -> Workspace:
        return cls(Path(os.environ.get("VITRINE_HOME", "var")).resolve())

    def __post_init__(self) -> None:
        private_folder(self.home)  # 0700: photos, e-mail addresses and the secret live here

    @property
    def database_url(self) -> str:
        return os.environ.get("VITRINE_DATABASE_URL") or database_url(self.home)

    def vectors_dir(self, model_id: str) -> Path:
        return self.home / "vectors" / safe_name(model_id)

    def index_dir(self, model_id: str) -> Path:
        return self.home / "index" / safe_name(model_id)

    @property
    def images_dir(self) -> Path:
        return self.home / "images"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def thumbnail_path(self, sha256: str) -> Path:
        return self.images_dir / sha256[:2] / f"{sha256}.jpg"

    def store_thumbnail(self, sha256: str, jpeg: bytes) -> None:
        """Content-addressed, so a duplicate image is stored once; written aside and renamed."""
        path = self.thumbnail_path(sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per write: twenty uploads of one photo at once each write their own copy
        # (a name per process let one rename another's file away: FileNotFoundError).
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        # 0600 from the start: customer photos are stored here too.
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as out:
            out.write(jpeg)
        os.replace(temporary, path)

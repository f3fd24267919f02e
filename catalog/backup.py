"""`vitrine backup DEST` and `vitrine restore SRC`: a data folder copied while the app and an ingest run.

A data folder's parts are written in an order that makes a consistent copy possible without stopping
anything: an ingest stores thumbnails, then vectors, then commits the products (`catalog_ingest.ingest`).
So the backup takes them in the opposite order:

1. the database, as one snapshot: SQLite's online backup API (one read transaction, so WAL writers go
   on), or `pg_dump` on a snapshot exported by a REPEATABLE READ transaction that also reads the ids of
   the product images it holds;
2. each vector store: the segments in charge, listed under the store's append lock (segments are
   immutable once renamed in; a compaction that deletes one mid-copy restarts that store's copy);
3. each saved index (its CURRENT version, retried likewise);
4. every other file: thumbnails and customer photos (content-addressed, written aside and renamed),
   secret.key, the outbox, reports, models; other SQLite files through the backup API too.

Everything the database snapshot knows therefore has its vectors and its images in the copy. What the
copy has beyond the snapshot (vectors of a batch committed after it) is then tombstoned in the copy, as
an ingest does after a crash, and the copied index is brought up to date with the copied store. A
manifest (`backup.json`, written last: a folder without it is no backup) lists the sha256 and size of
every file; `restore` checks them all before it copies anything into an empty data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Connection, make_url

from catalog.catalog_index import publish_index
from catalog.db import Product, ProductImage
from catalog.ids import VIEW_FLAG
from catalog.workspace import Workspace
from index.persistence import CURRENT, read_manifest
from index.vector_store import STORE_FILE, VectorStore, append_lock

MANIFEST = "backup.json"
FORMAT_VERSION = 1
SQLITE_FILE = "vitrine.db"
PG_DUMP_FILE = "database.pgdump"
SQLITE_HEADER = b"SQLite format 3\x00"
#: Top-level entries of the data folder the generic copy leaves out: taken in their own way above
#: (database, vectors, index) or scratch space.
SPECIAL = {"vectors", "index", "tmp", SQLITE_FILE}
#: Suffixes never worth copying: SQLite's side files (the backup API reads through them), lock files.
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")
RETRIES = 5

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class _Snapshot:
    """What the database snapshot holds: counts for the summary, image ids to reconcile the stores with."""

    kind: str
    products: int
    image_ids: np.ndarray


# ---- backup ------------------------------------------------------------------------------------------


def backup(workspace: Workspace, destination: Path, progress: Progress = lambda _: None) -> dict:
    """Copy the data folder to `destination` (missing or empty), consistent while writers run; returns the
    summary that is also the manifest (less its file list)."""
    started = time.monotonic()
    destination = destination.resolve()
    home = workspace.home.resolve()
    if destination == home or home in destination.parents:
        raise BackupError(f"{destination} is inside the data folder {home}; put the backup somewhere else")
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise BackupError(f"{destination} is not empty: back up into a new or empty folder")
    destination.mkdir(parents=True, exist_ok=True)
    url = workspace.database_url
    with _database_snapshot(url, destination) as snapshot:
        progress(f"database: {snapshot.products:,} products, {len(snapshot.image_ids):,} images ({snapshot.kind})")
        copied = Workspace(destination)
        models = []
        for meta in sorted((home / "vectors").glob(f"*/{STORE_FILE}")):
            models.append(_copy_model(workspace, copied, meta.parent, snapshot.image_ids, progress))
    others = _copy_other_files(home, destination, progress)
    files = {
        str(path.relative_to(destination)): {"sha256": _sha256(path), "bytes": path.stat().st_size}
        for path in sorted(destination.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    summary = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": str(home),
        "database": {"kind": snapshot.kind, "products": snapshot.products, "images": len(snapshot.image_ids)},
        "models": models,
        "other_files": others,
        "files_count": len(files),
        "bytes": sum(f["bytes"] for f in files.values()),
        "seconds": round(time.monotonic() - started, 2),
    }
    temporary = destination / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps({**summary, "files": files}, indent=1))
    os.replace(temporary, destination / MANIFEST)  # last: its presence marks a complete backup
    progress(f"backup complete: {len(files):,} files, {summary['bytes'] / 1e6:,.1f} MB in {summary['seconds']} s")
    return summary


@contextmanager
def _database_snapshot(url: str, destination: Path) -> Iterator[_Snapshot]:
    """Write the database snapshot into `destination`; yield what it holds (kept open for PostgreSQL
    until the stores are copied, which costs nothing but a transaction held open)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).is_file():
            raise BackupError(f"no database at {parsed.database}: nothing to back up")
        target = destination / SQLITE_FILE
        _sqlite_backup(Path(parsed.database), target)
        engine = create_engine(f"sqlite:///{target}")
        try:
            with engine.connect() as connection:
                yield _read_snapshot(connection, "sqlite")
        finally:
            engine.dispose()
        return
    if parsed.get_backend_name() != "postgresql":
        raise BackupError(f"cannot back up a {parsed.get_backend_name()} database (SQLite and PostgreSQL only)")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump is not installed (Debian package postgresql-client): it makes the database copy")
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection:
            snapshot_id = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            dumped = subprocess.run(
                [pg_dump, "--format=custom", "--no-owner", f"--snapshot={snapshot_id}", "--file",
                 str(destination / PG_DUMP_FILE), _libpq_url(url)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if dumped.returncode != 0:
                raise BackupError(f"pg_dump failed: {dumped.stderr.strip()}")
            yield _read_snapshot(connection, "postgresql")
    finally:
        engine.dispose()


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup in one step: one read transaction, so concurrent WAL writers never restart it."""
    reader = sqlite3.connect(source, timeout=60)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
        writer.execute("PRAGMA journal_mode=DELETE")  # one self-contained file; the app switches it to WAL
    finally:
        writer.close()
        reader.close()


def _read_snapshot(connection: Connection, kind: str) -> _Snapshot:
    if not inspect(connection).has_table(ProductImage.__tablename__):
        return _Snapshot(kind, 0, np.empty(0, np.int64))
    products = connection.execute(select(func.count()).select_from(Product)).scalar_one()
    ids = np.fromiter(connection.execute(select(ProductImage.id)).scalars(), np.int64)
    return _Snapshot(kind, int(products), np.sort(ids))


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq reads it (no `+driver`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _copy_model(workspace: Workspace, copied: Workspace, source: Path, known: np.ndarray, progress: Progress) -> dict:
    """One model's vector store and saved index, then both made to agree with the database snapshot."""
    meta = json.loads((source / STORE_FILE).read_text())
    model_id, dim = meta["model_id"], int(meta["dim"])
    target = copied.vectors_dir(model_id)
    segments = _retrying(lambda: _copy_store(source, target), f"the vector store {source}")
    store = VectorStore(target, model_id, dim)
    live = store.live_ids()
    orphans = np.setdiff1d(live[(live & VIEW_FLAG) == 0], known)
    store.delete(orphans)  # vectors of products committed after the database snapshot
    index_source = workspace.index_dir(model_id)
    had_index = (index_source / CURRENT).is_file()
    if had_index:
        _retrying(lambda: _copy_index(index_source, copied.index_dir(model_id)), f"the index {index_source}")
    published = publish_index(copied, model_id, dim, compact="none") if store.count() or had_index else None
    progress(
        f"{model_id}: {segments} store files, {store.count():,} vectors"
        + (f", {len(orphans):,} newer than the database left out" if len(orphans) else "")
        + (f"; index {published['mode']} ({published['count']:,})" if published else "")
    )
    return {
        "model_id": model_id,
        "dim": dim,
        "store_files": segments,
        "vectors": store.count(),
        "left_out": len(orphans),
        "index": None if published is None else {"mode": published["mode"], "count": published["count"]},
    }


def _copy_store(source: Path, target: Path) -> int:
    """Copy store.json and the segments in charge (listed under the append lock); returns how many."""
    if target.exists():
        shutil.rmtree(target)  # a retry starts over
    target.mkdir(parents=True)
    with append_lock(source):
        segments = VectorStore.open(source).segments()
    shutil.copy2(source / STORE_FILE, target / STORE_FILE)
    for segment in segments:
        shutil.copy2(segment, target / segment.name)
    kept = source / "inactive"  # deactivated products' vectors, kept aside (catalog_ingest.product_edits)
    if kept.is_dir():
        shutil.copytree(kept, target / "inactive", ignore=shutil.ignore_patterns(".*"))
    return len(segments)


def _copy_index(source: Path, target: Path) -> None:
    """The CURRENT version of a saved index and its pointer (its manifest holds each file's checksum)."""
    if target.exists():
        shutil.rmtree(target)
    version = (source / CURRENT).read_text().strip()
    shutil.copytree(source / version, target / version)
    (target / CURRENT).write_text(version + "\n")
    read_manifest(target)  # the copied version is readable


def _retrying(copy: Callable[[], int | None], what: str) -> int:
    """Run a copy again when a file it listed vanished (a compaction or a newer index version won)."""
    for _ in range(RETRIES):
        try:
            return copy() or 0
        except FileNotFoundError:
            time.sleep(0.2)
    raise BackupError(f"{what} kept changing under the backup ({RETRIES} tries); run the backup again")


def _copy_other_files(home: Path, destination: Path, progress: Progress) -> dict:
    """Everything else in the data folder, file by file; SQLite files through the backup API."""
    counts = {"files": 0, "sqlite_files": 0, "vanished": 0}
    for path in _walk(home):
        relative = path.relative_to(home)
        if relative.parts[0] in SPECIAL or path.name.endswith(SKIPPED_SUFFIXES) or path.name.startswith("."):
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if _is_sqlite(path):
                _sqlite_backup(path, target)
                counts["sqlite_files"] += 1
            else:
                shutil.copy2(path, target)
            counts["files"] += 1
        except FileNotFoundError:  # e.g. an outbox message delivered meanwhile
            counts["vanished"] += 1
    progress(f"other files: {counts['files']:,} (images, secret, outbox, reports, models)")
    return counts


def _walk(folder: Path) -> Iterator[Path]:
    """Regular files under `folder`, links never followed (a linked model folder stays where it is)."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not Path(root, d).is_symlink())
        for name in sorted(names):
            path = Path(root, name)
            if not path.is_symlink() and path.is_file():
                yield path


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == SQLITE_HEADER
    except OSError:
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- restore -----------------------------------------------------------------------------------------


def verify_backup(source: Path) -> dict:
    """The backup's manifest, once every file it lists is present with its size and sha256."""
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{source} is not a complete Vitrine backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"backup format {manifest.get('format_version')} is not supported (expected {FORMAT_VERSION})"
        )
    bad = []
    for name, expected in manifest["files"].items():
        path = source / name
        if not path.is_file():
            bad.append(f"{name} (missing)")
        elif path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            bad.append(f"{name} (checksum mismatch)")
    if bad:
        raise BackupError(f"the backup is damaged: {len(bad)} files fail their check, e.g. {', '.join(bad[:5])}")
    return manifest


def restore(source: Path, workspace: Workspace, progress: Progress = lambda _: None) -> dict:
    """Check the backup, then copy it into the (empty) data folder and its database; returns the manifest."""
    source = source.resolve()
    home = workspace.home
    present = sorted(p.name for p in home.iterdir())
    if present:
        raise BackupError(
            f"the data folder {home} is not empty ({len(present)} entries, e.g. {', '.join(present[:3])}): "
            "restore only into an empty one (set VITRINE_HOME to a new folder)"
        )
    manifest = verify_backup(source)
    progress(f"backup checked: {len(manifest['files']):,} files, sha256 of each as recorded")
    url = make_url(workspace.database_url)
    kind = manifest["database"]["kind"]
    if kind != ("sqlite" if url.get_backend_name() == "sqlite" else url.get_backend_name()):
        raise BackupError(
            f"this backup holds a {kind} database but the data folder's database is {url.get_backend_name()}: "
            + (
                "unset VITRINE_DATABASE_URL"
                if kind == "sqlite"
                else "set VITRINE_DATABASE_URL to an empty PostgreSQL database"
            )
        )
    if kind == "postgresql":
        _restore_postgres(source / PG_DUMP_FILE, workspace.database_url)
    for name in manifest["files"]:
        if name == PG_DUMP_FILE:
            continue
        target = home / name
        if name == SQLITE_FILE and url.database and Path(url.database) != home / SQLITE_FILE:
            target = Path(url.database)
            if target.exists():
                raise BackupError(f"the database {target} exists: restore only into a new one")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target)
    progress(f"restored {manifest['database']['products']:,} products and {len(manifest['files']):,} files into {home}")
    return manifest


def _restore_postgres(dump: Path, url: str) -> None:
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise BackupError("pg_restore is not installed (Debian package postgresql-client)")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"the database at {make_url(url).render_as_string()} has tables: restore only into an empty one"
        )
    done = subprocess.run(
        [pg_restore, "--no-owner", "--exit-on-error", "--dbname", _libpq_url(url), str(dump)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")

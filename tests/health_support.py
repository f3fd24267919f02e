"""A small ingested catalog to break, and a way to break its SQLite database like a failing disk does."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from catalogs import make_rows, write_csv

from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog


def small_workspace(folder: Path, embedder, rows: int = 12) -> Workspace:  # type: ignore[no-untyped-def]
    workspace = Workspace(folder / "home")
    folder.mkdir(parents=True, exist_ok=True)
    ingest_catalog(write_csv(folder / "catalog.csv", make_rows(rows)), "acme", embedder, workspace)
    return workspace


def corrupt_sqlite(db: Path, pages: int = 16, seed: int = 7) -> list[int]:
    """Overwrite `pages` pages in the middle of the file (never page 1, the header, nor the schema's
    pages, so the database still opens) with random bytes. Returns the page numbers."""
    with sqlite3.connect(db) as connection:
        schema = {n for (n,) in connection.execute("SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'")}
        count = connection.execute("PRAGMA page_count").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    candidates = [p for p in range(2, count + 1) if p not in schema]
    middle = len(candidates) // 2
    chosen = candidates[max(0, middle - pages // 2) :][:pages]
    rng = random.Random(seed)
    with db.open("r+b") as handle:
        for page in chosen:
            handle.seek((page - 1) * size)
            handle.write(rng.randbytes(size))
    return chosen

"""Where a database stands against the migrations, and bringing it up to date.

A database is `fresh` (no tables: safe to create at once), `current` (at the newest revision),
`behind` (an older revision, or a 0.1.0 folder made before migrations existed) or `ahead` (made by
a newer Vitrine). Only a fresh database is migrated without being asked: changing a database that
holds data is `vitrine db upgrade`, run on purpose.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent
UPGRADE_COMMAND = "vitrine db upgrade"
_LOCK_KEY = 0x76697472696E65  # "vitrine": the advisory lock of schema changes on PostgreSQL


class SchemaError(Exception):
    """The database cannot be used by this version of Vitrine as it stands."""


class DatabaseBehind(SchemaError):
    pass


class DatabaseAhead(SchemaError):
    pass


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # the revision stamped in the database; None before migrations
    head: str
    has_tables: bool

    @property
    def state(self) -> str:
        if self.current == self.head:
            return "current"
        if self.current is None:
            return "behind" if self.has_tables else "fresh"
        return "behind" if self.current in _known_revisions() else "ahead"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    """The revisions shipped with this version (read once: every database opened is checked against them)."""
    return ScriptDirectory.from_config(_config())


def _known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    return SchemaStatus(current=current, head=head_revision(), has_tables=bool(tables))


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One process at a time looks at and changes the schema: another one creating a fresh database's
    tables (SQLite commits each table on its own) must not look like a 0.1.0 database meanwhile.
    SQLite: an exclusive lock on a file beside the database; PostgreSQL: an advisory lock."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        with open(f"{database}.schema-lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                connection.commit()
        return
    yield


def _apply_migrations(engine: Engine) -> None:
    """Every revision the database lacks, in one transaction where the database allows; hold the lock."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), "head")


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every migration the database lacks; returns (revision before, revision after)."""
    with _migration_lock(engine):
        before = status(engine).current
        _apply_migrations(engine)
        return before, status(engine).current or ""


def require_current(engine: Engine) -> None:
    """Create a fresh database's tables; refuse one that is behind or ahead, saying what to run."""
    found = status(engine)
    if found.state == "current":
        return
    with _migration_lock(engine):
        found = status(engine)  # as it stands once no other process is changing it
        if found.state == "fresh":
            _apply_migrations(engine)
            return
    if found.state == "behind":
        where = f"revision {found.current}" if found.current else "the 0.1.0 schema (before migrations)"
        raise DatabaseBehind(
            f"the database is at {where}; this version of Vitrine needs {found.head}. "
            f"Back up the data folder, then run `{UPGRADE_COMMAND}`."
        )
    if found.state == "ahead":
        raise DatabaseAhead(
            f"the database is at revision {found.current}, which this version of Vitrine does not know "
            f"(newest here: {found.head}); it was upgraded by a newer Vitrine. Run that version instead."
        )

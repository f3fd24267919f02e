"""Where a database stands against the migrations, and bringing it up to date.

A database is `fresh` (no tables: safe to create at once), `current` (at the newest revision),
`behind` (an older revision, or a 0.1.0 folder made before migrations existed) or `ahead` (made by
a newer Vitrine). Only a fresh database is migrated without being asked: changing a database that
holds data is `vitrine db upgrade`, run on purpose.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

HERE = Path(__file__).resolve().parent
UPGRADE_COMMAND = "vitrine db upgrade"


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


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every migration the database lacks; returns (revision before, revision after)."""
    before = status(engine).current
    with engine.begin() as connection:
        command.upgrade(_config(connection), "head")
    return before, status(engine).current or ""


def require_current(engine: Engine) -> None:
    """Create a fresh database's tables; refuse one that is behind or ahead, saying what to run."""
    found = status(engine)
    if found.state == "fresh":
        try:
            upgrade(engine)
        except DBAPIError:
            # Another process created the tables at the same moment; what counts is the result.
            found = status(engine)
            if found.state != "current":
                raise
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

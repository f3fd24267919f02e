"""Is the database really readable? For `/api/health` (cheap, cached) and `vitrine doctor` (thorough).

A process that answers "ok" while a third of its reads fail helps nobody: health runs SQLite's
`PRAGMA quick_check` (page structure, without the index cross-checks) bounded by a short deadline,
and reads a row of a real table; the doctor runs the full `PRAGMA integrity_check`. Other databases
get `SELECT 1` and the same table read (their own servers watch their pages).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from catalog.db import ProductImage

MAX_PROBLEMS = 20  # an integrity check of a badly damaged file lists thousands of lines


@dataclass(frozen=True)
class DatabaseCheck:
    ok: bool
    check: str  # what ran: "quick_check", "integrity_check", "select"
    problems: tuple[str, ...] = ()
    complete: bool = True  # False: the SQLite check hit its deadline (what it read was sound)

    @property
    def reason(self) -> str | None:
        return None if self.ok else "; ".join(self.problems) or "the database check failed"

    def to_json(self) -> dict:
        return {"ok": self.ok, "check": self.check, "complete": self.complete, "problems": list(self.problems)}


def check_database(engine: Engine, thorough: bool = False, deadline_s: float | None = 2.0) -> DatabaseCheck:
    """Run the integrity check (`thorough`) or the quick one, then read a row of a real table.

    `deadline_s` bounds the SQLite pragma (None: no bound); a check cut short by it still counts as
    sound for what it read, and says so (`complete=False`). Never raises for a database error: a
    damaged or unreachable database is an answer (`ok=False`), not an exception.
    """
    sqlite = engine.dialect.name == "sqlite"
    pragma = "integrity_check" if thorough else "quick_check"
    check = pragma if sqlite else "select"
    complete = True
    try:
        with engine.connect() as connection:
            if sqlite:
                rows, complete = _sqlite_pragma(connection, pragma, deadline_s)
                problems = tuple(r for r in rows if r != "ok")[:MAX_PROBLEMS]
                if problems:
                    return DatabaseCheck(False, check, problems, complete)
            else:
                connection.exec_driver_sql("SELECT 1").scalar()
            connection.execute(select(ProductImage.id).limit(1)).all()
    except SQLAlchemyError as exc:
        return DatabaseCheck(False, check, (_first_line(exc),), complete)
    return DatabaseCheck(True, check, (), complete)


def _sqlite_pragma(connection, pragma: str, deadline_s: float | None) -> tuple[list[str], bool]:  # type: ignore[no-untyped-def]
    """The pragma's rows, and whether it ran to the end (an interrupt at the deadline yields no rows)."""
    raw = connection.connection.driver_connection
    stop_at = None if deadline_s is None else time.monotonic() + deadline_s
    interrupted = False

    def _past_deadline() -> int:
        nonlocal interrupted
        interrupted = stop_at is not None and time.monotonic() > stop_at
        return 1 if interrupted else 0

    if stop_at is not None:
        raw.set_progress_handler(_past_deadline, 10_000)
    try:
        rows = [str(row[0]) for row in connection.exec_driver_sql(f"PRAGMA {pragma}({MAX_PROBLEMS})").all()]
    except SQLAlchemyError:
        if interrupted:
            return [], False
        raise
    finally:
        if stop_at is not None:
            raw.set_progress_handler(None, 0)
    return rows, True


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


class HealthProbe:
    """`check_database` for `/api/health`: the answer is kept `ttl_s` seconds, so a health endpoint
    polled by a load balancer costs one quick check per interval, not one per request; concurrent
    callers wait for the one check under way instead of starting their own."""

    def __init__(self, engine: Engine, ttl_s: float = 5.0, deadline_s: float = 2.0) -> None:
        self.engine, self.ttl_s, self.deadline_s = engine, ttl_s, deadline_s
        self._lock = threading.Lock()
        self._last: tuple[float, DatabaseCheck] | None = None

    def check(self) -> DatabaseCheck:
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self.ttl_s:
                self._last = (time.monotonic(), check_database(self.engine, deadline_s=self.deadline_s))
            return self._last[1]

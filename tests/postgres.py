"""A throwaway PostgreSQL server for tests: Debian's binaries, a data folder in the system's temp
folder, a free port on 127.0.0.1. As root (CI machines) the server runs as the `postgres` user, which
PostgreSQL requires. Without the binaries the tests that need it are skipped, unless
VITRINE_REQUIRE_POSTGRES=1 (set by CI) turns that into a failure.

`VITRINE_TEST_DATABASE=postgresql` runs the tests against PostgreSQL (`DatabasePerHome`), on a server
of their own or on the one `VITRINE_TEST_POSTGRES_URL` names. From the shell (`.ci/run`):

    python tests/postgres.py start FOLDER     # prints the URL of a new server in FOLDER
    python tests/postgres.py stop FOLDER
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_VARIABLE = "VITRINE_REQUIRE_POSTGRES"


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _missing_binaries() -> None:
    reason = "no PostgreSQL server binaries (Debian package postgresql)"
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 requires them")
    pytest.skip(reason)


def _run(binary: str, *arguments: str) -> None:
    """A server binary, as the `postgres` user when we are root (PostgreSQL refuses to run as root)."""
    binaries = _binaries()
    if binaries is None:
        _missing_binaries()
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run([*prefix, str(binaries / binary), *arguments], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{binary} failed ({done.returncode}): {done.stdout}{done.stderr}")


def start_server(folder: Path) -> str:
    """Start a server whose files live in `folder` (made if missing), with an empty database `vitrine`;
    its SQLAlchemy URL. `stop_server(folder)` stops it and removes the folder."""
    if _binaries() is None:
        _missing_binaries()
    data, sockets = folder / "data", folder / "sockets"
    folder.mkdir(parents=True, exist_ok=True)
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o755)
        for parent in folder.parents:  # the server must be able to reach its folder
            if parent == Path("/") or parent.stat().st_mode & 0o001:
                break
            parent.chmod(parent.stat().st_mode | 0o001)
    port = _free_port()
    _run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    _run(
        "pg_ctl", "-D", str(data), "-w", "-l", str(folder / "server.log"),
        "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400", "start",
    )  # fmt: skip
    try:
        _run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "vitrine")
    except BaseException:
        stop_server(folder)
        raise
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/vitrine"


def stop_server(folder: Path) -> None:
    try:
        _run("pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_server(folder: Path | None = None) -> Iterator[str]:
    """A running server with an empty database `vitrine`; yields its SQLAlchemy URL.

    Its files go in `folder`, by default a fresh one in the system's temp folder: not under pytest's
    own temp folders, whose parent another pytest run resets to owner-only, locking the server out."""
    folder = folder or Path(tempfile.mkdtemp(prefix="vitrine-postgres-"))
    url = start_server(folder)
    try:
        yield url
    finally:
        stop_server(folder)


# --- "Against both": the same tests on PostgreSQL -------------------------------------------------------------------

#: `VITRINE_TEST_DATABASE=postgresql` runs the tests against PostgreSQL: every data folder a test makes
#: gets a database of its own on one server started for the session (CI's second pass, `.ci/run`).
SELECT_VARIABLE = "VITRINE_TEST_DATABASE"
#: A server already running (started by `.ci/run`) for that pass, instead of one per test session.
SERVER_VARIABLE = "VITRINE_TEST_POSTGRES_URL"


def postgres_selected() -> bool:
    return os.environ.get(SELECT_VARIABLE, "sqlite").lower() in ("postgresql", "postgres")


class DatabasePerHome:
    """Maps each data folder to a fresh PostgreSQL database on one server, made on first use.

    Databases are copied from a template already at the newest revision (CREATE DATABASE ... TEMPLATE
    is a file copy, far cheaper than running the migrations per test), so a test sees what a fresh
    `vitrine serve` would make. Names carry a per-session prefix, so sessions can share a server."""

    def __init__(self, server_url: str) -> None:
        from sqlalchemy import create_engine

        from catalog.db import make_engine

        self.server_url = server_url.rsplit("/", 1)[0]
        self._admin = create_engine(f"{self.server_url}/postgres", isolation_level="AUTOCOMMIT")
        self._urls: dict[Path, str] = {}
        self._lock = threading.Lock()
        self.prefix = f"vt_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_template"
        self._execute(f"CREATE DATABASE {self.template}")
        make_engine(self.url_of(self.template)).dispose()  # migrated to head by opening it

    def url_of(self, name: str) -> str:
        return f"{self.server_url}/{name}"

    def _execute(self, statement: str) -> None:
        from sqlalchemy import text

        with self._admin.connect() as connection:
            connection.execute(text(statement))

    def __call__(self, home: Path) -> str:
        from catalog.db import database_url

        home = home.resolve()
        with self._lock:
            if home in self._urls:
                return self._urls[home]
            if (home / "vitrine.db").exists():  # a test that made a SQLite database itself (e.g. a 0.1.0 one)
                return database_url(home)
            name = f"{self.prefix}_{len(self._urls) + 1}"
            self._execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
            self._urls[home] = self.url_of(name)
            return self._urls[home]

    def close(self) -> None:
        self._admin.dispose()


if __name__ == "__main__":
    import sys

    match sys.argv[1:]:
        case ["start", folder]:
            print(start_server(Path(folder).resolve()))
        case ["stop", folder]:
            stop_server(Path(folder).resolve())
        case _:
            sys.exit("usage: python tests/postgres.py start|stop FOLDER")

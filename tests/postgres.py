"""A throwaway PostgreSQL server for tests: Debian's binaries, a data folder under the test's temp
dir, a free port on 127.0.0.1. As root (CI machines) the server runs as the `postgres` user, which
PostgreSQL requires. Without the binaries the tests that need it are skipped, unless
VITRINE_REQUIRE_POSTGRES=1 (set by CI) turns that into a failure."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
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


@contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """A running server with an empty database `vitrine`; yields its SQLAlchemy URL."""
    binaries = _binaries()
    if binaries is None:
        reason = "no PostgreSQL server binaries (Debian package postgresql)"
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 requires them")
        pytest.skip(reason)
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    data, sockets = folder / "data", folder / "sockets"
    folder.mkdir(parents=True, exist_ok=True)
    sockets.mkdir(exist_ok=True)
    if as_root:
        owner = pwd.getpwnam("postgres")
        for path in (folder, sockets):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o755)
        for parent in folder.parents:  # the server must be able to reach its folder
            if parent == Path("/") or parent.stat().st_mode & 0o001:
                break
            parent.chmod(parent.stat().st_mode | 0o001)
    port = _free_port()

    def run(*command: str) -> None:
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(
        str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "server.log"),
        "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    )  # fmt: skip
    try:
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "vitrine")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/vitrine"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)

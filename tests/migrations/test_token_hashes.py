"""Migration 0006 on existing rows: every customer token becomes its SHA-256 (the token column goes),
on SQLite and on PostgreSQL, and the old links keep opening their requests; a downgrade that would
need the tokens back refuses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic import command
from postgres import postgres_server
from sqlalchemy import create_engine, inspect, text

from migrations.runner import _config

TOKENS = ("tok-" + "a" * 40, "Z" * 32)


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vitrine.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield _sqlite(tmp_path)
        return
    with postgres_server() as url:  # its own temp folder, outside pytest's (see tests/postgres.py)
        yield url


def _at(url: str, revision: str, upgrade: bool = True) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        (command.upgrade if upgrade else command.downgrade)(_config(connection), revision)
    engine.dispose()


def test_existing_tokens_are_replaced_by_their_hashes(database_url: str) -> None:
    _at(database_url, "0005_access")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for number, token in enumerate(TOKENS, start=1):
            connection.execute(
                text(
                    "INSERT INTO requests (id, token, status, email, words, photo_sha256, photo_width, photo_height,"
                    " category, created_at, updated_at) VALUES (:id, :token, 'queued', 'c@d.ee', '', :sha, 10, 10,"
                    " '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": number, "token": token, "sha": "c" * 64},
            )
    engine.dispose()
    _at(database_url, "0006_hardening")
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("requests")}
            assert "token" not in columns and {"token_sha256", "token_salt"} <= columns
            rows = connection.execute(text("SELECT id, token_sha256, token_salt FROM requests ORDER BY id")).all()
            assert rows == [(i, hashlib.sha256(t.encode()).hexdigest(), None) for i, t in enumerate(TOKENS, start=1)]
            user_columns = {c["name"] for c in inspect(connection).get_columns("users")}
            assert {"totp_secret", "totp_last_step"} <= user_columns
        with pytest.raises(RuntimeError, match="cannot be undone"):
            _at(database_url, "0005_access", upgrade=False)
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM requests"))
    finally:
        engine.dispose()
    _at(database_url, "0005_access", upgrade=False)  # nothing to lose: the columns come back as they were
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert "token" in {c["name"] for c in inspect(connection).get_columns("requests")}
    engine.dispose()

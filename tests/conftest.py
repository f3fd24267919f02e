"""Shared fixtures: one private VITRINE_HOME per test session, the `test-tiny` model, real photos."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from shared_data import FLIPKART, require


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: tests the SQLite file itself (WAL, damaged pages, a copied data folder); "
        "skipped when VITRINE_TEST_DATABASE=postgresql",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from postgres import postgres_selected

    if postgres_selected():
        skip = pytest.mark.skip(reason="tests the SQLite file itself; this pass runs on PostgreSQL")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def vitrine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test writes models and data under a throwaway home, never the developer's ./var."""
    home = tmp_path_factory.mktemp("vitrine-home")
    os.environ["VITRINE_HOME"] = str(home)
    return home


@pytest.fixture(scope="session", autouse=True)
def database_per_home(vitrine_home: Path):
    """With VITRINE_TEST_DATABASE=postgresql, every data folder's database is a PostgreSQL one (one
    server for the session, a fresh database per folder); otherwise nothing changes (SQLite files)."""
    from postgres import REQUIRE_VARIABLE, SERVER_VARIABLE, DatabasePerHome, postgres_selected, postgres_server

    if not postgres_selected():
        yield None
        return
    os.environ.setdefault(REQUIRE_VARIABLE, "1")  # asked for PostgreSQL: missing binaries fail, never skip
    given = os.environ.get(SERVER_VARIABLE)
    server = contextlib.nullcontext(given) if given else postgres_server()
    with server as url, pytest.MonkeyPatch.context() as patch:
        databases = DatabasePerHome(url)
        patch.setattr("catalog.workspace.database_url", databases)
        yield databases
        databases.close()


@pytest.fixture(scope="session")
def store(vitrine_home: Path):
    from vision.model_store import ModelStore

    return ModelStore(vitrine_home)


@pytest.fixture(scope="session")
def tiny(store):
    """The exported `test-tiny` model: (folder, manifest)."""
    return store.resolve("test-tiny")


@pytest.fixture(scope="session")
def flipkart() -> Path:
    """The shared Flipkart sample (a real vendor catalog with photos); skipped where it is absent."""
    return require(FLIPKART)


@pytest.fixture(scope="session")
def real_photos(flipkart: Path) -> list[Path]:
    """Real product photos of the shared vendor catalog, largest first."""
    photos = sorted((flipkart / "images").glob("*.jpg"), key=lambda p: p.stat().st_size, reverse=True)
    assert photos, f"no photos in {flipkart / 'images'}"
    return photos

"""Shared fixtures: one private VITRINE_HOME per test session, the `test-tiny` model, real photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from shared_data import FLIPKART, require


@pytest.fixture(scope="session", autouse=True)
def vitrine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test writes models and data under a throwaway home, never the developer's ./var."""
    home = tmp_path_factory.mktemp("vitrine-home")
    os.environ["VITRINE_HOME"] = str(home)
    return home


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

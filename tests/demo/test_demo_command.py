"""`vitrine demo`'s preparation: catalog, ingest and operator account, each done once."""

from __future__ import annotations

import pytest

from catalog.db import Product, make_engine, session_factory
from catalog.workspace import Workspace
from demo.command import prepare_demo
from workflow.users import authenticate


@pytest.fixture()
def own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VITRINE_HOME", str(tmp_path))
    return tmp_path


def test_prepare_builds_once_and_the_operator_can_sign_in(own_home) -> None:
    first = prepare_demo("demo", "onnx", seed=11, products=42)
    engine = make_engine(Workspace.from_env().database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        products = session.query(Product).count()
    assert products == 42
    assert authenticate(sessions, first.operator, first.password) is not None
    assert authenticate(sessions, first.operator, first.password + "x") is None
    second = prepare_demo("demo", "onnx", seed=11, products=42)
    with sessions() as session:
        assert session.query(Product).count() == 42
    engine.dispose()
    assert second == first
    markers = sorted(p.name for p in first.catalog.iterdir() if p.name.startswith(".ingested-"))
    assert len(markers) == 1 and markers[0].startswith(".ingested-demo@")

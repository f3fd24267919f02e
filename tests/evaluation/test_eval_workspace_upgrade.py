"""An evaluation workspace made by an older version is the evaluator's own cache: `vitrine eval` upgrades
its database instead of stopping with "run `vitrine db upgrade`" as it must for a user's data folder."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine

from catalog.db import database_url
from catalog.workspace import Workspace
from evaluation.evaluate import up_to_date
from migrations.runner import _config, head_revision, status


def test_an_older_evaluation_workspace_is_brought_to_the_newest_schema(tmp_path, monkeypatch):
    monkeypatch.delenv("VITRINE_DATABASE_URL", raising=False)
    workspace = Workspace(tmp_path / "eval-workspace")
    engine = create_engine(database_url(workspace.home))
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0001_baseline")
    assert status(engine).state == "behind"
    up_to_date(workspace)
    assert status(engine).current == head_revision() and status(engine).state == "current"
    engine.dispose()


def test_a_workspace_without_a_database_yet_is_left_alone(tmp_path):
    workspace = Workspace(tmp_path / "fresh")
    up_to_date(workspace)
    assert not (workspace.home / "vitrine.db").exists()

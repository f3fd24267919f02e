"""`/api/health` checks the database for real: a file with damaged pages answers 503, with the reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from health_support import corrupt_sqlite, small_workspace
from litestar.testing import TestClient

from api.app import create_app
from vision.embedder import open_embedder
from workflow.payments import TestPaymentProvider
from workflow.settings import Settings


@pytest.fixture
def workspace(tiny, store, tmp_path: Path):
    return small_workspace(tmp_path / "shop", open_embedder("test-tiny", "onnx", store))


@pytest.mark.sqlite_only
def test_health_answers_503_once_database_pages_are_corrupted(workspace) -> None:
    settings = Settings(workspace=workspace, model="test-tiny", index_refresh_s=0)
    app = create_app(settings, payments=TestPaymentProvider())
    app.state.health.ttl_s = 0.3
    with TestClient(app) as client:
        fine = client.get("/api/health")
        assert fine.status_code == 200, fine.text
        assert fine.json()["ok"] is True and fine.json()["database"]["check"] == "quick_check"
        corrupt_sqlite(Path(workspace.database_url.split("///", 1)[1]))  # the disk fails under a running server
        assert client.get("/api/health").status_code == 200  # the answer is cached a moment: health stays cheap
        time.sleep(0.35)
        broken = client.get("/api/health")
    assert broken.status_code == 503
    body = broken.json()
    assert body["ok"] is False and body["database"]["ok"] is False
    assert "database check failed" in body["reason"] and body["database"]["problems"]
    assert "Traceback" not in broken.text

"""The JSON API's published names stay what 0.1.0 published: generated clients keep working."""

from __future__ import annotations

from litestar.testing import TestClient

from api.app import create_app
from api.search_app import create_search_app
from catalog.workspace import Workspace
from workflow.settings import Settings

OPERATIONS_OF_0_1_0 = {
    ("/api/requests", "post"): "ApiRequestsApiCreateRequest",
    ("/api/requests/{token}", "get"): "ApiRequestsTokenApiGetRequest",
    ("/api/requests/{token}/offers/{offer_id}/accept", "post"): "ApiRequestsTokenOffersOfferIdAcceptApiAcceptOffer",
    ("/api/health", "get"): "ApiHealthApiHealth",
    ("/api/search", "post"): "ApiSearchSearchProductsHandler",
}


def test_operation_ids_and_body_schemas_are_those_of_0_1_0(tiny, tmp_path):
    app = create_app(Settings(workspace=Workspace(tmp_path / "home"), model="test-tiny", index_refresh_s=0))
    with TestClient(app) as client:
        document = client.get("/schema/openapi.json").json()
    operations = {
        (path, method): op["operationId"] for path, ops in document["paths"].items() for method, op in ops.items()
    }
    assert {key: operations.get(key) for key in OPERATIONS_OF_0_1_0} == OPERATIONS_OF_0_1_0  # later ones may be added
    assert {"AcceptBody", "NewRequestForm"} <= set(document["components"]["schemas"])


def test_the_search_only_app_answers_json_everywhere(tiny, tmp_path, monkeypatch):
    """It has no pages: an unknown address is a JSON 404, not a failed error page."""
    monkeypatch.setenv("VITRINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VITRINE_MODEL", "test-tiny")
    with TestClient(create_search_app()) as client:
        missing = client.get("/")
    assert missing.status_code == 404 and missing.json()["status_code"] == 404

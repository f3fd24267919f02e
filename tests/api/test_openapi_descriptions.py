"""Every JSON field in the OpenAPI document is described (issue 14: API docs readable offline).

A client author reading /docs should learn what each field means without reading the code: every
property of every component schema has a `description`, every operation a summary or description,
and no documented JSON answer is a bare untyped object (a handler returning `dict[str, Any]`). The
answers built as plain dictionaries (`api/request_shapes.py`) are checked against the real ones of a
whole journey, so the document neither misses a key nor states a wrong type.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from catalogs import product_photo
from delivery_support import ADDRESS, SHIPMENT
from jsonschema import Draft202012Validator
from litestar.testing import TestClient
from webapp import build_catalog, start_site

from api.app import create_app
from catalog.workspace import Workspace
from vision.embedder import open_embedder
from workflow.payments import APPROVED
from workflow.settings import Settings
from workflow.users import add_user

#: JSON answers that stay untyped objects on purpose, each with why.
UNTYPED_ANSWERS_ALLOWED: dict[tuple[str, str, str], str] = {}

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document(tiny, tmp_path_factory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("openapi") / "home"
    app = create_app(Settings(workspace=Workspace(home), model="test-tiny", index_refresh_s=0))
    with TestClient(app) as client:
        return client.get("/schema/openapi.json").json()


def _undescribed(schema: dict[str, Any], where: str) -> Iterator[str]:
    """Paths of the properties under `schema` (nested objects, items, unions) that have no description."""
    for name, prop in (schema.get("properties") or {}).items():
        here = f"{where}.{name}"
        if not prop.get("description"):
            yield here
        yield from _undescribed(prop, here)
    if isinstance(schema.get("items"), dict):
        yield from _undescribed(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _undescribed(schema["additionalProperties"], f"{where}{{}}")
    for union in ("oneOf", "anyOf", "allOf"):
        for i, option in enumerate(schema.get(union) or []):
            yield from _undescribed(option, f"{where}<{union}{i}>")


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def test_every_property_of_every_schema_is_described(document):
    missing = [
        found for name, schema in document["components"]["schemas"].items() for found in _undescribed(schema, name)
    ]
    for path, method, operation in _operations(document):  # inline bodies and answers, not in components
        bodies = [operation.get("requestBody") or {}, *operation.get("responses", {}).values()]
        for body in bodies:
            for media in (body.get("content") or {}).values():
                missing += _undescribed(media.get("schema") or {}, f"{method.upper()} {path}")
    assert not missing, f"{len(missing)} properties have no description:\n" + "\n".join(missing)


def test_every_operation_has_a_summary_or_description(document):
    bare = [
        f"{method.upper()} {path}"
        for path, method, operation in _operations(document)
        if not (operation.get("summary") or operation.get("description"))
    ]
    assert not bare, "operations without summary or description:\n" + "\n".join(bare)


def test_no_json_answer_is_an_untyped_object(document):
    untyped = []
    for path, method, operation in _operations(document):
        for status, answer in operation.get("responses", {}).items():
            media = (answer.get("content") or {}).get("application/json")
            if media is None:
                continue
            schema = _resolve(document, media.get("schema") or {})
            if schema.get("type") == "object" and not schema.get("properties"):
                key = (method.upper(), path, status)
                if key not in UNTYPED_ANSWERS_ALLOWED:
                    untyped.append(" ".join(key))
    assert not untyped, "JSON answers typed as a bare object (dict[str, Any]):\n" + "\n".join(untyped)


def test_the_walk_finds_what_it_should():
    """The checker itself: a nested property without a description is reported, a described one is not."""
    schema = {
        "properties": {
            "a": {"description": "x", "type": "array", "items": {"properties": {"b": {"type": "string"}}}},
            "c": {"description": "y", "oneOf": [{"properties": {"d": {"description": "z"}}}]},
        }
    }
    assert list(_undescribed(schema, "S")) == ["S.a[].b"]


def _strict(node: Any) -> Any:
    """The document with every object that lists its properties closed to others: a key the answer
    has and the document does not is an undescribed field."""
    if isinstance(node, dict):
        closed = {key: _strict(value) for key, value in node.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(node, list):
        return [_strict(value) for value in node]
    return node


class Contract:
    """Checks real answers against what the document states for their operation and status."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = _strict(copy.deepcopy(document))

    def check(self, answer: httpx.Response, path: str, method: str = "post") -> dict[str, Any]:
        assert answer.status_code < 300, answer.text
        documented = self.document["paths"][path][method]["responses"][str(answer.status_code)]
        schema = documented["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**self.document, **schema})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer.json())]
        assert not errors, f"{method.upper()} {path} {answer.status_code}:\n" + "\n".join(errors)
        return answer.json()


def test_real_answers_match_their_documented_shapes(tiny, store, tmp_path: Any) -> None:
    workspace = build_catalog(tmp_path, open_embedder("test-tiny", "onnx", store))
    site, server = start_site(workspace)
    add_user(site.sessions, "docs", "operator", "a long documented password")
    try:
        with httpx.Client(base_url=site.url, timeout=60) as http:
            contract = Contract(http.get("/schema/openapi.json").json())
            contract.check(http.get("/api/health"), "/api/health", "get")
            contract.check(http.post("/api/search", data={"text": "blue mug"}), "/api/search")
            photo = {"photo": ("p.jpg", product_photo(5, size=200), "image/jpeg")}
            made = http.post("/api/requests", data={"email": "c@d.ee", "budget": "50"}, files=photo)
            token = contract.check(made, "/api/requests")["token"]
            contract.check(http.get(f"/api/requests/{token}"), "/api/requests/{token}", "get")

            issued = http.post("/api/staff/token", json={"name": "docs", "password": "a long documented password"})
            staff = {"Authorization": f"Bearer {contract.check(issued, '/api/staff/token')['token']}"}
            contract.check(http.get("/api/staff/requests/counts", headers=staff), "/api/staff/requests/counts", "get")
            rows = contract.check(http.get("/api/staff/requests", headers=staff), "/api/staff/requests", "get")
            request_id = next(row["id"] for row in rows if row["token"] == token)
            base = f"/api/staff/requests/{request_id}"
            contract.check(http.post(f"{base}/claim", headers=staff), "/api/staff/requests/{request_id}/claim")
            said = http.post(f"{base}/messages", headers=staff, json={"body": "Which colour?"})
            assert contract.check(said, "/api/staff/requests/{request_id}/messages")["messages"][-1]["name"] == "docs"
            found = contract.check(
                http.post(f"{base}/search", headers=staff, json={"words": "mug", "crop": None}),
                "/api/staff/requests/{request_id}/search",
            )
            offer = [{"product_id": found["candidates"][0]["product_id"], "price": "25.00", "note": "fits"}]
            sent = contract.check(
                http.post(f"{base}/offers", headers=staff, json={"offers": offer}),
                "/api/staff/requests/{request_id}/offers",
            )
            accepted = http.post(
                f"/api/requests/{token}/offers/{sent['sent_offer_ids'][0]}/accept",
                json={"card": APPROVED, "delivery": ADDRESS},
            )
            contract.check(accepted, "/api/requests/{token}/offers/{offer_id}/accept")
            contract.check(
                http.post(f"{base}/fulfil", headers=staff, json=SHIPMENT), "/api/staff/requests/{request_id}/fulfil"
            )
            shown = contract.check(http.get(f"/api/requests/{token}"), "/api/requests/{token}", "get")
            assert shown["order"]["tracking"]["number"] == SHIPMENT["tracking"]  # the fullest shape was checked
            contract.check(http.get(base, headers=staff), "/api/staff/requests/{request_id}", "get")
    finally:
        server.stop()


def test_the_contract_check_flags_an_undocumented_key_and_a_wrong_type() -> None:
    shape = {"properties": {"n": {"type": "integer"}}, "type": "object"}
    document = {
        "paths": {
            "/x": {
                "get": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}
                    }
                }
            }
        },
        "components": {"schemas": {"X": shape}},
    }
    contract = Contract(document)
    request = httpx.Request("GET", "http://x/x")
    assert contract.check(httpx.Response(200, json={"n": 1}, request=request), "/x", "get") == {"n": 1}
    for wrong in ({"n": 1, "extra": 2}, {"n": "1"}):
        with pytest.raises(AssertionError, match=r"extra|not of type"):
            contract.check(httpx.Response(200, json=wrong, request=request), "/x", "get")

"""Every JSON field in the OpenAPI document is described (issue 14: API docs readable offline).

A client author reading /docs should learn what each field means without reading the code: every
property of every component schema has a `description`, every operation a summary or description,
and no documented JSON answer is a bare untyped object (a handler returning `dict[str, Any]`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from catalog.workspace import Workspace
from workflow.settings import Settings

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

"""The JSON API keeps the contract its OpenAPI document states: Schemathesis (30 examples per operation,
then its stateful phase) against a real server over a small catalog finds no server error and no
contract failure.

Checks: all of Schemathesis' but two. `positive_data_acceptance` expects every schema-valid request to
be accepted; the schema cannot say "a decodable photo", "a photo or words" or "a card number of 12 to
19 digits", so those schema-valid requests are rightly refused (400/422, documented).
`negative_data_rejection` expects every schema-invalid body refused, but Litestar decodes JSON bodies
leniently by design (`0` for false, `"5"` for 5). Rate limits are off so the examples reach the routes'
logic; the 429 they answer is documented on each limited route all the same. The staff JSON API is
fuzzed with an operator's bearer token (`--header`), all but signing out (which would end the token for
the operations after it); the staff pages are not in the document (HTML behind a sign-in)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from catalogs import product_photo
from litestar.testing import TestClient
from webapp import build_catalog, start_site

from vision.embedder import open_embedder
from workflow.users import add_user

PASSWORD = "a long fuzzing password"

EXPECTED_OPERATIONS = {
    "POST /api/requests",
    "GET /api/requests/{token}",
    "POST /api/requests/{token}/offers/{offer_id}/accept",
    "GET /api/health",
    "POST /api/search",
}


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_contract_failure(tmp_path: Path, tiny, store):
    workspace = build_catalog(tmp_path, open_embedder("test-tiny", "onnx", store))
    site, server = start_site(workspace, rate_limits="off")
    report = tmp_path / "schemathesis.json"
    try:
        document = json.loads(site.client().get("/schema/openapi.json").text)
        operations = {f"{m.upper()} {p}" for p, ops in document["paths"].items() for m in ops}
        assert operations >= EXPECTED_OPERATIONS
        assert "requestBody" in document["paths"]["/api/search"]["post"]
        # A staff token, so the staff API's operations run past their 401 (a customer request waits in the queue).
        add_user(site.sessions, "fuzzer", "operator", PASSWORD)
        issued = site.client().http.post("/api/staff/token", json={"name": "fuzzer", "password": PASSWORD})
        assert issued.status_code == 200, issued.text
        token = issued.json()["token"]
        # Signing out (DELETE /api/staff/token) would end the token for every operation after it: left out.
        sign_out = document["paths"].get("/api/staff/token", {}).get("delete", {}).get("operationId")
        left_out = ["--exclude-operation-id", sign_out] if sign_out else []
        photo = {"photo": ("p.jpg", product_photo(3), "image/jpeg")}
        assert site.client().http.post("/api/requests", data={"email": "c@d.ee"}, files=photo).status_code == 201
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"), "run", f"{site.url}/schema/openapi.json",
                "--checks", "all", "--exclude-checks", "positive_data_acceptance,negative_data_rejection",
                "--max-examples", "30", "--seed", "17", "--workers", "1", "--no-color",
                "--header", f"Authorization: Bearer {token}", *left_out,
                "--generation-database", "none", "--report", "json", "--report-json-path", str(report),
            ],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.stop()
    outcome = json.loads(report.read_text())
    tested = outcome["operations"]
    print(
        f"schemathesis: {tested['tested']} of {tested['total']} operations, "
        f"{outcome['test_cases']['generated']} test cases, {len(outcome['failures'])} failures, "
        f"{len(outcome['errors'])} errors; warnings: { ({k: v for k, v in outcome['warnings'].items() if v}) }"
    )
    assert done.returncode == 0, done.stdout[-6000:]
    assert outcome["complete"] and outcome["failures"] == [] and outcome["errors"] == []
    assert tested["tested"] == tested["selected"] == len(operations) - (1 if sign_out else 0)
    assert outcome["test_cases"]["generated"] >= 30 * len(operations) // 2


def test_options_names_every_method_of_a_path_and_an_id_beyond_64_bits_is_a_404():
    """The two contract fixes Schemathesis found, on a bare app: litestar#4169's `Allow` and the 500 an
    id too large for SQLite used to be."""
    from litestar import Litestar, delete, get, post

    from api.allow_header import allow_every_method
    from api.errors import EXCEPTION_HANDLERS

    @post("/thing", status_code=200)
    async def make() -> None: ...

    @delete("/thing")
    async def remove() -> None: ...

    @get("/thing/{thing_id:int}")
    async def read(thing_id: int) -> dict:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    @get("/sum")
    async def overflowing() -> dict:
        raise OverflowError("math range error")

    app = Litestar([make, remove, read, overflowing], before_send=[allow_every_method])
    app.exception_handlers.update(EXCEPTION_HANDLERS)
    with TestClient(app) as client:
        assert client.options("/thing").headers["allow"] == "DELETE, OPTIONS, POST"
        too_large = client.get(f"/thing/{2**80}")
        assert too_large.status_code == 404 and "too large to be an id" in too_large.json()["detail"]
        assert client.get("/sum").status_code == 500  # not an id: still a crash

"""The staff JSON API over a real HTTP server: a bearer token from the sign-in rules, the operator's
lists and every workbench action end to end (claim, search, offers, the customer's accept through
the customer API, fulfil, cancel), and the refusals: 401 without or with a dead token, 403 for a
vendor's token, 409 naming the claim's holder, 422 for what the form would refuse."""

from __future__ import annotations

import httpx
import pyotp
import pytest
from catalogs import product_photo
from delivery_support import ADDRESS
from sqlalchemy import select
from typer.testing import CliRunner
from webapp import build_catalog, start_site

from catalog.db import Vendor
from cli.main import app as cli_app
from vision.embedder import open_embedder
from workflow import totp
from workflow.payments import APPROVED
from workflow.users import add_user

PASSWORD = "correct horse battery"
STAFF_ROUTES = {
    ("get", "/api/staff/requests"),
    ("get", "/api/staff/requests/counts"),
    ("post", "/api/staff/requests/next"),
    ("get", "/api/staff/requests/{request_id}"),
    ("post", "/api/staff/requests/{request_id}/claim"),
    ("post", "/api/staff/requests/{request_id}/release"),
    ("post", "/api/staff/requests/{request_id}/search"),
    ("post", "/api/staff/requests/{request_id}/none-match"),
    ("post", "/api/staff/requests/{request_id}/messages"),
    ("post", "/api/staff/requests/{request_id}/offers"),
    ("post", "/api/staff/requests/{request_id}/offers/{offer_id}/withdraw"),
    ("post", "/api/staff/requests/{request_id}/fulfil"),
    ("post", "/api/staff/requests/{request_id}/close"),
    ("post", "/api/staff/requests/{request_id}/cancel"),
    ("delete", "/api/staff/token"),
}


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("staff-api-catalog"), embedder)
    site, server = start_site(workspace)
    with site.sessions() as session:
        acme = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
    for name, role in (("alice", "operator"), ("bob", "operator"), ("carol", "operator"), ("root", "admin")):
        add_user(site.sessions, name, role, PASSWORD)
    add_user(site.sessions, "acme-shop", "vendor", PASSWORD, vendor_id=acme)
    yield site
    server.stop()


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def _token(http: httpx.Client, name: str, password: str = PASSWORD, **extra: str) -> str:
    answer = http.post("/api/staff/token", json={"name": name, "password": password, **extra})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and body["name"] == name and body["expires_in"] == 12 * 3600
    return body["token"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _customer_request(http: httpx.Client, number: int, words: str = "") -> str:
    """A request made through the customer JSON API (a photo like a catalog product's, not the same
    file, so it stays private to staff); its token."""
    made = http.post(
        "/api/requests",
        data={"email": "shopper@example.com", "words": words},
        files={"photo": ("photo.jpg", product_photo(number, size=200), "image/jpeg")},  # not a catalog shot
    )
    assert made.status_code == 201, made.text
    return made.json()["token"]


def _listed(http: httpx.Client, headers: dict[str, str], view: str) -> list[dict]:
    answer = http.get("/api/staff/requests", params={"view": view}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_operator_works_a_request_from_queue_to_fulfilment_over_the_api(site, http) -> None:
    wrong = http.post("/api/staff/token", json={"name": "alice", "password": "not her password"})
    assert wrong.status_code == 401 and "not right" in wrong.json()["detail"]
    alice = _auth(_token(http, "alice"))
    customer_token = _customer_request(http, 7, words="mug")

    queue = _listed(http, alice, "queue")
    row = next(r for r in queue if r["token"] == customer_token)  # the customer's token, derived again
    assert row["status"] == "queued" and row["url"].endswith(f"/r/{customer_token}") and row["holder"] is None
    request_id = row["id"]
    photo = http.get(row["photo_url"], headers=alice)  # the customer's photo, to staff tokens only
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert http.get(row["photo_url"]).status_code == 404
    counts = http.get("/api/staff/requests/counts", headers=alice).json()
    assert counts["queue"] >= 1 and set(counts) >= {"queue", "mine", "offers_out", "to_fulfil", "messages"}

    claimed = http.post(f"/api/staff/requests/{request_id}/claim", headers=alice)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "claimed" and claimed.json()["claimed_by"] == "alice"
    assert [r["id"] for r in _listed(http, alice, "mine")] == [request_id]

    bob = _auth(_token(http, "bob"))
    taken = http.post(f"/api/staff/requests/{request_id}/claim", headers=bob)
    assert taken.status_code == 409 and taken.json()["holder"] == "alice" and "alice" in taken.json()["detail"]
    meddling = http.post(
        f"/api/staff/requests/{request_id}/offers", headers=bob, json={"offers": [{"product_id": 1, "price": "9"}]}
    )
    assert meddling.status_code == 409 and meddling.json()["holder"] == "alice"  # the claim covers offers too

    searched = http.post(
        f"/api/staff/requests/{request_id}/search",
        headers=alice,
        json={
            "crop": {"x": 0.1, "y": 0.1, "w": 0.8, "h": 0.8},
            "words": "blue",
            "max_price": "1,000",
            "in_stock": None,
        },
    )
    assert searched.status_code == 200, searched.text
    found = searched.json()
    assert found["search"]["hits"] > 0 and found["round"] == found["search"]["round"] >= 1
    assert found["candidates"] and found["last_query"]["crop"] == [0.1, 0.1, 0.8, 0.8]
    outside = http.post(
        f"/api/staff/requests/{request_id}/search", headers=alice, json={"crop": {"x": 0.5, "y": 0, "w": 0.9, "h": 1}}
    )
    assert outside.status_code == 422 and "inside the photo" in outside.json()["detail"]

    said = http.post(f"/api/staff/requests/{request_id}/messages", headers=alice, json={"body": "Which colour?"})
    assert said.status_code == 200 and said.json()["messages"][-1]["body"] == "Which colour?"

    empty = http.post(f"/api/staff/requests/{request_id}/offers", headers=alice, json={"offers": []})
    assert empty.status_code == 422 and "at least one" in empty.json()["detail"]
    free = [{"product_id": found["candidates"][0]["product_id"], "price": "0.001"}]
    zero = http.post(f"/api/staff/requests/{request_id}/offers", headers=alice, json={"offers": free})
    assert zero.status_code == 422 and "positive price" in zero.json()["detail"]
    picks = [c["product_id"] for c in found["candidates"][:2]]
    sent = http.post(
        f"/api/staff/requests/{request_id}/offers",
        headers=alice,
        json={
            "offers": [
                {"product_id": picks[0], "price": "25.00", "note": "fits"},
                {"product_id": picks[1], "price": "30"},
            ],
            "expires_in_hours": 24,
        },
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "offers_sent" and len(sent.json()["sent_offer_ids"]) == 2
    assert request_id in [r["id"] for r in _listed(http, alice, "offers_out")]

    offer_id, second_offer = sent.json()["sent_offer_ids"]
    path = f"/api/staff/requests/{request_id}/offers/{second_offer}/withdraw"
    not_bobs = http.post(path, headers=bob)
    assert not_bobs.status_code == 409 and not_bobs.json()["holder"] == "alice"
    withdrawn = http.post(path, headers=alice)
    assert withdrawn.status_code == 200, withdrawn.text
    assert {o["id"]: o["status"] for o in withdrawn.json()["offers"]} == {offer_id: "sent", second_offer: "withdrawn"}
    accepted = http.post(
        f"/api/requests/{customer_token}/offers/{offer_id}/accept", json={"card_number": APPROVED, "delivery": ADDRESS}
    )
    assert accepted.status_code == 200 and accepted.json()["status"] == "paid", accepted.text
    assert request_id in [r["id"] for r in _listed(http, alice, "to_fulfil")]

    untracked = http.post(f"/api/staff/requests/{request_id}/fulfil", headers=alice, json={"carrier": "DHL"})
    assert untracked.status_code == 422 and "tracking number" in untracked.json()["detail"]
    assert http.get(f"/api/requests/{customer_token}").json()["payment"]["status"] == "authorised"  # nothing taken
    fulfilled = http.post(
        f"/api/staff/requests/{request_id}/fulfil", headers=alice, json={"carrier": "DHL", "tracking": "JD0123"}
    )
    assert fulfilled.status_code == 200, fulfilled.text
    assert fulfilled.json()["status"] == "fulfilled"
    assert [p["status"] for p in fulfilled.json()["payments"]] == ["captured"]
    again = http.post(f"/api/staff/requests/{request_id}/fulfil", headers=alice, json={})
    assert again.status_code == 409  # only a paid request can be fulfilled
    closed = http.post(f"/api/staff/requests/{request_id}/close", headers=alice)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"

    other = _customer_request(http, 11)
    other_id = next(r["id"] for r in _listed(http, alice, "queue") if r["token"] == other)
    assert http.post(f"/api/staff/requests/{other_id}/claim", headers=alice).status_code == 200
    no_reason = http.post(f"/api/staff/requests/{other_id}/cancel", headers=alice, json={"reason": "  "})
    assert no_reason.status_code == 422 and no_reason.json()["status_code"] == 422
    cancelled = http.post(f"/api/staff/requests/{other_id}/cancel", headers=alice, json={"reason": "Not sold here"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    shown = http.get(f"/api/requests/{other}").json()
    assert shown["status"] == "cancelled" and "Not sold here" in shown["messages"][-1]["body"]


def test_next_none_match_and_release(site, http) -> None:
    carol = _auth(_token(http, "carol"))
    _customer_request(http, 3)
    first = http.post("/api/staff/requests/next", headers=carol)
    assert first.status_code == 200 and first.json()["claimed_by"] == "carol"
    request_id = first.json()["id"]
    judged = http.post(f"/api/staff/requests/{request_id}/none-match", headers=carol)
    assert judged.status_code == 200 and judged.json()["status"] == "claimed"
    silent = http.post(f"/api/staff/requests/{request_id}/release", headers=carol, json={"reason": ""})
    assert silent.status_code == 422
    released = http.post(f"/api/staff/requests/{request_id}/release", headers=carol, json={"reason": "not my area"})
    assert released.status_code == 200 and released.json()["status"] == "queued"
    assert http.get("/api/staff/requests/999999", headers=carol).status_code == 404
    unknown_view = http.get("/api/staff/requests", params={"view": "everything"}, headers=carol)
    assert unknown_view.status_code == 400


def test_a_vendor_token_is_refused_on_staff_routes(site, http) -> None:
    answer = http.post("/api/staff/token", json={"name": "acme-shop", "password": PASSWORD})
    assert answer.status_code == 200 and answer.json()["role"] == "vendor"
    vendor = _auth(answer.json()["token"])
    for method, path in (("get", "/api/staff/requests"), ("post", "/api/staff/requests/1/claim")):
        refused = http.request(method.upper(), path, headers=vendor)
        assert refused.status_code == 403 and "vendor token" in refused.json()["detail"], refused.text


def test_missing_bad_revoked_and_disabled_tokens_get_401(site, http, monkeypatch) -> None:
    assert http.get("/api/staff/requests").status_code == 401
    assert http.get("/api/staff/requests", headers=_auth("vtk_made-up-token-value")).status_code == 401
    # A browser's session cookie is not an API credential.
    cookie = site.client()
    assert cookie.login("carol", PASSWORD).status_code == 303
    session_token = cookie.http.cookies["vitrine_staff"]
    assert http.get("/api/staff/requests", headers=_auth(session_token)).status_code == 401
    cookie.http.headers["accept"] = "application/json"
    assert cookie.get("/api/staff/requests").status_code == 401  # carries the signed-in cookie
    cookie.close()

    first, second = _token(http, "carol"), _token(http, "carol")
    assert http.get("/api/staff/requests", headers=_auth(first)).status_code == 200
    signed_out = http.delete("/api/staff/token", headers=_auth(first))
    assert signed_out.status_code == 204
    gone = http.get("/api/staff/requests", headers=_auth(first))
    assert gone.status_code == 401 and gone.headers["www-authenticate"].startswith("Bearer")
    assert http.get("/api/staff/requests", headers=_auth(second)).status_code == 200  # the other one stays

    monkeypatch.setenv("VITRINE_HOME", str(site.settings.workspace.home))
    revoked = CliRunner().invoke(cli_app, ["users", "sessions", "revoke", "carol"])
    assert revoked.exit_code == 0, revoked.output
    assert http.get("/api/staff/requests", headers=_auth(second)).status_code == 401

    third = _token(http, "carol")
    assert CliRunner().invoke(cli_app, ["users", "disable", "carol"]).exit_code == 0
    assert http.get("/api/staff/requests", headers=_auth(third)).status_code == 401
    refused = http.post("/api/staff/token", json={"name": "carol", "password": PASSWORD})
    assert refused.status_code == 401 and "token" not in refused.json()
    assert CliRunner().invoke(cli_app, ["users", "enable", "carol"]).exit_code == 0


def test_the_token_endpoint_keeps_the_sign_in_rules(site, http) -> None:
    add_user(site.sessions, "dave", "operator", PASSWORD)
    for _ in range(site.settings.sign_in_failures):
        assert http.post("/api/staff/token", json={"name": "dave", "password": "guess guess guess"}).status_code == 401
    locked = http.post("/api/staff/token", json={"name": "dave", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1, locked.text

    secret, _ = totp.enrol(site.sessions, "root")
    without = http.post("/api/staff/token", json={"name": "root", "password": PASSWORD})
    assert without.status_code == 401 and "6-digit code" in without.json()["detail"]
    token = _token(http, "root", code=pyotp.TOTP(secret).now())
    replay = http.post(
        "/api/staff/token", json={"name": "root", "password": PASSWORD, "code": pyotp.TOTP(secret).now()}
    )
    assert replay.status_code == 401  # each code works once
    assert http.get("/api/staff/requests", headers=_auth(token)).status_code == 200  # admins are staff


def test_the_openapi_document_lists_every_route_with_bearer_security(site, http) -> None:
    document = http.get("/schema/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["staffToken"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    operations = {
        (method, path): op for path, ops in document["paths"].items() for method, op in ops.items() if "/staff" in path
    }
    assert set(operations) >= STAFF_ROUTES | {("post", "/api/staff/token")}
    for key in STAFF_ROUTES:
        op = operations[key]
        assert op["security"] == [{"staffToken": []}], key
        assert {"401", "403"} <= set(op["responses"]) or key == ("delete", "/api/staff/token"), key
    token = operations[("post", "/api/staff/token")]
    assert "security" not in token and {"200", "401", "429"} <= set(token["responses"])
    assert "requestBody" in token
    offers = operations[("post", "/api/staff/requests/{request_id}/offers")]
    body = offers["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(document["components"]["schemas"][body]["properties"]) == {"offers", "expires_in_hours"}
    for key in (
        ("post", "/api/staff/requests/{request_id}/fulfil"),
        ("post", "/api/staff/requests/{request_id}/cancel"),
    ):
        assert "requestBody" in operations[key] and "409" in operations[key]["responses"]
    claim_conflict = offers["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "holder" in document["components"]["schemas"][claim_conflict]["properties"]
    listing = operations[("get", "/api/staff/requests")]
    assert "cannot be derived" in listing["description"]

"""Vendor API keys and vendor applications over HTTP, against a real server: a key made on
/vendor/team (shown once) works on `GET /api/vendor/orders` as its vendor and sees only that vendor's
orders, a revoked key or one whose creator is switched off is 401, a key is never a staff credential,
and `POST /api/applications/vendor` checks fields (422 naming `phone`) and returns the application
already waiting instead of a second."""

from __future__ import annotations

import re

import httpx
import pytest
from catalogs import product_photo
from delivery_support import ADDRESS
from sqlalchemy import select
from webapp import offered_request, staffed_site

from access.models import VendorApiKey, VendorApplication
from vision.embedder import open_embedder
from workflow.models import User
from workflow.payments import APPROVED

PASSWORD = "correct horse battery"


STAFF = (
    ("alice", "operator"),
    ("acme-shop", "vendor", "acme"),
    ("acme-two", "vendor", "acme"),
    ("globex-shop", "vendor", "globex"),
)


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    folder = tmp_path_factory.mktemp("vendor-keys-catalog")
    with staffed_site(folder, embedder, PASSWORD, STAFF, rate_limits="off") as site:
        yield site


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def _order(site, http: httpx.Client, row: int, vendor: str) -> str:  # type: ignore[no-untyped-def]
    """A paid order for one of `vendor`'s products; its number."""
    token, _, offer = offered_request(site, http, product_photo(row, size=200), vendor)
    paid = http.post(f"/api/requests/{token}/offers/{offer}/accept", json={"card": APPROVED, "delivery": ADDRESS})
    assert paid.status_code == 200, paid.text
    return paid.json()["order"]["number"]


def _make_key(site, user: str, name: str) -> str:  # type: ignore[no-untyped-def]
    """Sign in as `user`, make a key on /vendor/team and read its secret off the page (shown once)."""
    browser = site.client()
    assert browser.login(user, PASSWORD).status_code == 303
    made = browser.post("/vendor/team/keys", {"name": name})
    assert made.status_code == 200, made.text
    secrets = re.findall(r'value="(vvk_[\w-]+)"', made.text)
    assert len(secrets) == 1, "the new key is shown on the page that made it"
    again = browser.get("/vendor/team").text
    assert secrets[0] not in again and secrets[0][:12] in again  # listed by prefix only, never again in full
    browser.close()
    return secrets[0]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_key_acts_as_its_vendor_and_sees_only_its_orders(site, http) -> None:
    acme_number = _order(site, http, 3, "acme")
    globex_number = _order(site, http, 4, "globex")
    acme_key = _make_key(site, "acme-shop", "acme back office")
    globex_key = _make_key(site, "globex-shop", "globex back office")

    acme = http.get("/api/vendor/orders", headers=_bearer(acme_key))
    assert acme.status_code == 200, acme.text
    numbers = {o["number"] for o in acme.json()}
    assert acme_number in numbers and globex_number not in numbers
    globex = http.get("/api/vendor/orders", headers=_bearer(globex_key)).json()
    assert [o["number"] for o in globex] == [globex_number]
    with site.sessions() as session:
        row = session.scalar(select(VendorApiKey).where(VendorApiKey.name == "acme back office"))
        assert row.last_used_at is not None and row.key_sha256 != acme_key


def test_a_key_is_no_staff_credential(site, http) -> None:
    key = _make_key(site, "acme-shop", "not for staff")
    for path in ("/api/staff/requests", "/api/staff/requests/counts"):
        refused = http.get(path, headers=_bearer(key))
        assert refused.status_code == 401, (path, refused.text)
        assert "vendor API key" in refused.json()["detail"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    signed_out = http.delete("/api/staff/token", headers=_bearer(key))  # "signing out" a key would do nothing
    assert signed_out.status_code == 403 and "/vendor/team" in signed_out.text
    assert http.get("/api/vendor/orders", headers=_bearer(key)).status_code == 200  # and it says so: still works


def test_a_revoked_key_and_a_key_of_a_switched_off_user_are_401(site, http) -> None:
    key = _make_key(site, "acme-shop", "to revoke")
    assert http.get("/api/vendor/orders", headers=_bearer(key)).status_code == 200
    with site.sessions() as session:
        key_id = session.scalar(select(VendorApiKey.id).where(VendorApiKey.name == "to revoke"))
    browser = site.client()
    assert browser.login("acme-shop", PASSWORD).status_code == 303
    unconfirmed = browser.post(f"/vendor/team/keys/{key_id}/revoke", {})
    assert unconfirmed.status_code == 422  # no ticked confirmation: nothing changes
    assert http.get("/api/vendor/orders", headers=_bearer(key)).status_code == 200
    assert browser.post(f"/vendor/team/keys/{key_id}/revoke", {"confirm": "yes"}).status_code in (302, 303)
    assert http.get("/api/vendor/orders", headers=_bearer(key)).status_code == 401

    second = _make_key(site, "acme-two", "acme-two's script")
    assert http.get("/api/vendor/orders", headers=_bearer(second)).status_code == 200
    with site.sessions() as session:
        two = session.scalar(select(User.id).where(User.name == "acme-two"))
    assert browser.post(f"/vendor/team/members/{two}/off", {"confirm": "yes"}).status_code in (302, 303)
    assert http.get("/api/vendor/orders", headers=_bearer(second)).status_code == 401
    assert browser.post(f"/vendor/team/members/{two}/on", {}).status_code in (302, 303)
    browser.close()


def test_another_vendors_key_cannot_be_revoked_and_nobody_else_is_let_in(site, http) -> None:
    key = _make_key(site, "acme-shop", "acme only")
    with site.sessions() as session:
        key_id = session.scalar(select(VendorApiKey.id).where(VendorApiKey.name == "acme only"))
    globex = site.client()
    assert globex.login("globex-shop", PASSWORD).status_code == 303
    assert globex.post(f"/vendor/team/keys/{key_id}/revoke", {"confirm": "yes"}).status_code == 404
    assert "acme only" not in globex.get("/vendor/team").text
    globex.close()
    assert http.get("/api/vendor/orders", headers=_bearer(key)).status_code == 200
    assert http.get("/api/vendor/orders").status_code == 401
    assert http.get("/api/vendor/orders", headers=_bearer("vvk_" + "x" * 43)).status_code == 401
    assert http.get("/vendor/team", follow_redirects=False).status_code in (302, 303)


def test_vendor_applications_over_json(site, http) -> None:
    body = {
        "company": "Lumen Lights",
        "contact_name": "Lena Berg",
        "email": "lena@lumen-lights.com",
        "phone": "12",
        "country": "DE",
        "website": "https://lumen-lights.com",
    }
    refused = http.post("/api/applications/vendor", json=body)
    assert refused.status_code == 422 and refused.json()["field"] == "phone", refused.text
    assert "too short" in refused.json()["detail"]
    made = http.post("/api/applications/vendor", json={**body, "phone": "030 901820"})
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "pending" and made.json()["existing"] is False
    again = http.post("/api/applications/vendor", json={**body, "phone": "030 901820"})
    assert again.status_code == 201 and again.json() == {**made.json(), "existing": True}
    with site.sessions() as session:
        row = session.get(VendorApplication, made.json()["id"])
        assert (row.phone, row.status) == ("+4930901820", "pending")
    bad_site = http.post("/api/applications/vendor", json={**body, "phone": "030 901820", "website": "ftp://x.org"})
    assert bad_site.status_code == 422 and bad_site.json()["field"] == "website"


def test_the_openapi_document_describes_keys_and_the_vendor_application(http) -> None:
    schema = http.get("/schema/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["staffToken"]["description"]
    assert "vendor API key" in scheme
    apply = schema["paths"]["/api/applications/vendor"]["post"]
    assert {"201", "422", "429"} <= set(apply["responses"])


def test_keys_over_json_with_a_vendor_token_never_with_a_key(site, http) -> None:
    token = http.post("/api/staff/token", json={"name": "globex-shop", "password": PASSWORD}).json()["token"]
    me = _bearer(token)
    assert http.post("/api/vendor/keys", json={"name": " "}, headers=me).status_code == 422
    made = http.post("/api/vendor/keys", json={"name": "globex json"}, headers=me)
    assert made.status_code == 201, made.text
    secret = made.json()["key"]
    assert secret.startswith(made.json()["prefix"]) and len(secret) > 40
    listed = http.get("/api/vendor/keys", headers=me).json()
    mine = next(k for k in listed if k["id"] == made.json()["id"])
    assert mine["created_by"] == "globex-shop" and mine["revoked_at"] is None
    assert secret not in str(listed)
    assert http.get("/api/vendor/keys", headers=_bearer(secret)).status_code == 403  # a key cannot mint keys
    acme_key = _make_key(site, "acme-shop", "acme, not globex's")
    with site.sessions() as session:
        acme_id = session.scalar(select(VendorApiKey.id).where(VendorApiKey.name == "acme, not globex's"))
    assert http.delete(f"/api/vendor/keys/{acme_id}", headers=me).status_code == 404
    assert http.get("/api/vendor/orders", headers=_bearer(acme_key)).status_code == 200
    assert http.delete(f"/api/vendor/keys/{made.json()['id']}", headers=me).status_code == 204
    assert http.get("/api/vendor/orders", headers=_bearer(secret)).status_code == 401
    assert http.get("/api/vendor/keys").status_code == 401

"""The access API and the closed-beta door against a real server in waitlist mode: joining (201, then
200 with the same entry for the same address in any case or spacing, 422 naming the field), reading an
entry, the verification link from the .eml the outbox wrote, operator applications (422 naming
`phone`), requests refused without an invitation and taken with one, and the OpenAPI document."""

from __future__ import annotations

import re

import httpx
import pytest
from access_support import AccessSite, small_catalog, start_access_site
from catalogs import product_photo
from webapp import Browser

from access import waitlist
from vision.embedder import open_embedder
from workflow.models import User


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = small_catalog(tmp_path_factory.mktemp("waitlist-catalog"), embedder)
    site, server = start_access_site(workspace, tmp_path_factory.mktemp("outbox"))
    yield site
    server.stop()


@pytest.fixture
def api(site: AccessSite):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def test_joining_answers_201_then_200_with_the_same_entry(site: AccessSite, api: httpx.Client):
    first = api.post("/api/waitlist", json={"email": "Ann.Api@Example.com"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["verified"] is False and body["invited"] is False and body["position"] >= 1
    assert re.fullmatch(rf"{re.escape(site.url)}/waitlist\?ref=[\w-]+", body["share_url"])
    again = api.post("/api/waitlist", json={"email": "  ann.api@EXAMPLE.COM "})
    assert again.status_code == 200 and again.json() == body
    read = api.get(f"/api/waitlist/{body['id']}")
    assert read.status_code == 200
    assert {k: read.json()[k] for k in ("position", "verified", "invited")} == {
        "position": body["position"],
        "verified": False,
        "invited": False,
    }


def test_a_wrong_address_is_a_422_naming_the_field(api: httpx.Client):
    for wrong in ("ann@", "ann@mail.invalid", "not an address"):
        refused = api.post("/api/waitlist", json={"email": wrong})
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "email"
        assert "e-mail address" in refused.json()["detail"]
    assert api.get("/api/waitlist/no-such-entry").status_code == 404


def test_the_emailed_link_verifies_and_a_verified_referral_moves_the_referrer_up(site: AccessSite, api: httpx.Client):
    first = api.post("/api/waitlist", json={"email": "first@example.com"}).json()
    page = api.get(site.link("first@example.com", "/waitlist/verify"))
    assert page.status_code == 303 and page.headers["location"] == f"/waitlist/{first['id']}"
    before = api.get(f"/api/waitlist/{first['id']}").json()
    assert before["verified"] is True
    for name in ("second", "third"):  # two people join after first and verify: first is ahead of them
        api.post("/api/waitlist", json={"email": f"{name}@example.com"})
        api.get(site.link(f"{name}@example.com", "/waitlist/verify"))
    ref = first["share_url"].rsplit("=", 1)[1]
    friend = api.post("/api/waitlist", json={"email": "friend@example.com", "ref": ref}).json()
    assert api.get(f"/api/waitlist/{first['id']}").json()["position"] == before["position"]  # not verified yet
    api.get(site.link("friend@example.com", "/waitlist/verify"))
    after = api.get(f"/api/waitlist/{first['id']}").json()
    assert after["position"] == max(1, before["position"] - 2)
    assert api.get(f"/api/waitlist/{friend['id']}").json()["verified"] is True


def _admin(site: AccessSite) -> User:
    with site.sessions() as session:
        user = session.query(User).filter_by(name="api-admin").one_or_none()
        if user is None:
            user = User(name="api-admin", role="admin", password_hash="x")
            session.add(user)
            session.commit()
            session.refresh(user)
        session.expunge(user)
        return user


def test_closed_beta_requests_need_an_invitation(site: AccessSite, api: httpx.Client):
    photo = {"photo": ("mug.png", product_photo(3), "image/png")}
    refused = api.post("/api/requests", data={"email": "guest@example.com"}, files=photo)
    assert refused.status_code == 403
    assert "closed beta" in refused.json()["detail"] and "/waitlist" in refused.json()["detail"]
    wrong = api.post("/api/requests", data={"email": "guest@example.com", "invitation": "nope"}, files=photo)
    assert wrong.status_code == 403
    waitlist.invite(site.sessions, site.outbox, site.url, "guest@example.com", _admin(site))
    token = site.link("guest@example.com", "/invite").rsplit("/", 1)[1]
    taken = api.post("/api/requests", data={"email": "guest@example.com", "invitation": token}, files=photo)
    assert taken.status_code == 201, taken.text
    assert api.post("/api/search", files=photo).status_code == 200  # search stays open


def test_the_request_form_is_refused_without_the_invitation_cookie_and_taken_with_it(site: AccessSite):
    browser = Browser(site.url)
    try:
        home = browser.get("/")
        assert 'data-testid="closed-beta"' in home.text
        photo = {"photo": ("mug.png", product_photo(4), "image/png")}
        refused = browser.post("/requests", {"email": "form@example.com"}, files=photo)
        assert refused.status_code == 403
        assert "closed beta" in refused.text and 'value="form@example.com"' in refused.text  # what was typed stays
        waitlist.invite(site.sessions, site.outbox, site.url, "form@example.com", _admin(site))
        accepted = browser.get(site.link("form@example.com", "/invite"))
        assert accepted.status_code == 303 and accepted.headers["location"] == "/"
        assert 'data-testid="invited"' in browser.get("/").text
        taken = browser.post("/requests", {"email": "form@example.com"}, files=photo)
        assert taken.status_code == 303 and taken.headers["location"].startswith("/r/")
    finally:
        browser.close()


def _catalog_category(site: AccessSite) -> str:
    from catalog.db import Product

    with site.sessions() as session:
        return session.query(Product.category).filter(Product.category != "").first()[0]


def test_operator_applications(site: AccessSite, api: httpx.Client):
    body = {
        "name": "Ola Nordmann",
        "email": "ola@example.com",
        "phone": "(202) 456-111",
        "country": "US",
        "languages": ["Norwegian", "English"],
        "categories": [_catalog_category(site).upper()],
        "note": "I know these well.",
    }
    refused = api.post("/api/applications/operator", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "phone" and "too short" in refused.json()["detail"]
    taken = api.post("/api/applications/operator", json={**body, "phone": "(202) 456-1111"})
    assert taken.status_code == 201, taken.text
    assert taken.json()["status"] == "pending"
    assert "Hello Ola Nordmann" in site.mails_to("ola@example.com")[0]
    unknown = api.post(
        "/api/applications/operator",
        json={**body, "email": "x@example.com", "phone": "(202) 456-1111", "categories": ["rockets"]},
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "categories"


def test_the_openapi_document_has_the_access_routes_with_bodies_and_statuses(api: httpx.Client):
    paths = api.get("/schema/openapi.json").json()["paths"]
    join = paths["/api/waitlist"]["post"]
    assert {"201", "200", "422"} <= set(join["responses"])
    assert "requestBody" in join
    assert {"200", "404"} <= set(paths["/api/waitlist/{entry_id}"]["get"]["responses"])
    apply = paths["/api/applications/operator"]["post"]
    assert {"201", "422"} <= set(apply["responses"]) and "requestBody" in apply
    assert not any(path.startswith(("/admin", "/waitlist", "/apply", "/invite")) for path in paths)


def test_the_join_form_keeps_what_was_typed_and_says_what_is_wrong(site: AccessSite):
    browser = Browser(site.url)
    try:
        refused = browser.post("/waitlist", {"email": "pat@shop.test", "ref": "abc"})
        assert refused.status_code == 422
        assert "special-use or reserved" in refused.text and 'value="pat@shop.test"' in refused.text
        assert 'name="ref" value="abc"' in refused.text
        joined = browser.post("/waitlist", {"email": "Pat@Example.com"})
        assert joined.status_code == 303 and joined.headers["location"].startswith("/waitlist/")
        page = browser.get(joined.headers["location"])
        assert "pat@example.com" in page.text and 'data-testid="waitlist-unverified"' in page.text
    finally:
        browser.close()


def test_the_admin_area_is_for_admins_only(site: AccessSite):
    from workflow.users import add_user

    add_user(site.sessions, "oscar", "operator", "amber lantern drifts north")
    browser = Browser(site.url)
    try:
        assert browser.get("/admin/waitlist").headers["location"] == "/login?next=/admin/waitlist"
        browser.login("oscar", "amber lantern drifts north")
        assert browser.get("/admin/waitlist").status_code == 403
        assert browser.post("/admin/waitlist/invite-next", {"count": "5"}).status_code == 403
    finally:
        browser.close()

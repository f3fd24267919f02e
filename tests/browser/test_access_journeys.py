"""The two access journeys in a real browser (Debian's Chromium) against a real server in closed-beta
mode, mail read from the .eml files the outbox writes:

1. join the waitlist → verify by the e-mailed link → see the place and the share link → a friend joins
   through it and verifies → the first moves up → an admin invites the next one → the invited customer
   sends a photo request;
2. apply as an operator (a wrong phone number refused first) → an admin approves → the new operator
   sets a password through the e-mailed link and signs in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from access_support import AccessSite, small_catalog, start_access_site
from browser_support import chromium_path, shot
from catalogs import product_photo

from access import waitlist
from vision.embedder import open_embedder
from workflow.models import AuditEntry
from workflow.users import add_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (set VITRINE_CHROMIUM)")

ADMIN_PASSWORD = "amber lantern drifts north"
NEW_PASSWORD = "violet tractor sings quietly"


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = small_catalog(tmp_path_factory.mktemp("access-catalog"), embedder)
    site, server = start_access_site(workspace, tmp_path_factory.mktemp("access-outbox"))
    add_user(site.sessions, "ada", "admin", ADMIN_PASSWORD)
    yield site
    server.stop()


def admin_signs_in(page, site: AccessSite, where: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + where)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.get_by_test_id("login-name").fill("ada")
    page.get_by_test_id("login-password").fill(ADMIN_PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(site.url + where)


def join_and_verify(page, site: AccessSite, address: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """On the join form already open: join, then follow the e-mailed link."""
    page.get_by_test_id("waitlist-email").fill(address)
    page.get_by_test_id("waitlist-join").click()
    page.wait_for_url(re.compile(r"/waitlist/[\w-]{16,}$"))
    expect(page.get_by_test_id("waitlist-unverified")).to_be_visible()
    shot(page, f"{name}-1-joined")
    page.goto(site.url + site.link(address.strip().lower(), "/waitlist/verify"))  # mail goes to the one spelling
    expect(page.get_by_test_id("waitlist-verified")).to_be_visible()
    shot(page, f"{name}-2-verified")


def test_waitlist_referral_invitation_and_a_request(site: AccessSite, open_page, tmp_path: Path) -> None:
    for early in ("early1@example.com", "early2@example.com"):  # two people already in line
        waitlist.join(site.sessions, site.outbox, site.url, early, None, 2)
        waitlist.verify(site.sessions, site.link(early, "/waitlist/verify").rsplit("/", 1)[1])

    maya = open_page()
    maya.goto(site.url + "/")
    expect(maya.get_by_test_id("closed-beta")).to_be_visible()
    maya.get_by_test_id("closed-beta-join").click()
    join_and_verify(maya, site, "Maya@Example.com", "maya")
    position = maya.get_by_test_id("waitlist-position")
    expect(position).to_have_text("3")
    share_url = maya.get_by_test_id("share-url").input_value()
    assert re.fullmatch(rf"{re.escape(site.url)}/waitlist\?ref=[\w-]+", share_url)

    friend = open_page()
    friend.goto(share_url)
    expect(friend.get_by_test_id("referred")).to_be_visible()
    join_and_verify(friend, site, "friend@example.com", "friend")

    maya.reload()
    expect(position).to_have_text("1")  # one verified referral: up two places
    expect(maya.get_by_test_id("referrals")).to_have_text("1")
    shot(maya, "maya-3-moved-up")

    admin = open_page()
    admin_signs_in(admin, site, "/admin/waitlist")
    first = admin.get_by_test_id("line-row").first
    expect(first).to_have_attribute("data-email", "maya@example.com")
    admin.get_by_test_id("invite-count").fill("1")
    admin.get_by_test_id("invite-next").click()
    expect(admin.get_by_test_id("flash")).to_have_text("Invited 1: maya@example.com.")
    shot(admin, "admin-1-invited")

    maya.goto(site.url + site.link("maya@example.com", "/invite"))
    maya.wait_for_url(site.url + "/")
    expect(maya.get_by_test_id("invited")).to_be_visible()
    photo = tmp_path / "lamp.png"
    photo.write_bytes(product_photo(11))
    maya.get_by_test_id("photo-input").set_input_files(photo)
    maya.get_by_test_id("email-input").fill("maya@example.com")
    maya.get_by_test_id("submit-request").click()
    maya.wait_for_url(re.compile(r"/r/[\w-]{32,}$"))
    expect(maya.get_by_test_id("request-status")).to_have_attribute("data-status", "queued")
    shot(maya, "maya-4-request-sent")

    admin.goto(site.url + "/admin/audit")
    expect(admin.locator('[data-testid="audit-row"][data-action="access.invited"]')).to_have_count(1)


def test_operator_application_approval_and_first_sign_in(site: AccessSite, open_page) -> None:
    lena = open_page()
    lena.goto(site.url + "/apply/operator")
    lena.get_by_test_id("apply-name").fill("Lena Berg")
    lena.get_by_test_id("apply-email").fill("lena.berg@example.com")
    lena.get_by_test_id("apply-country").select_option("DE")
    lena.get_by_test_id("apply-phone").fill("12")
    lena.get_by_test_id("apply-languages").fill("German, English")
    lena.get_by_test_id("apply-category-2").check()
    lena.get_by_test_id("apply-note").fill("Ten years in a lighting shop.")
    lena.get_by_test_id("apply-submit").click()
    error = lena.get_by_test_id("apply-error")
    expect(error).to_have_attribute("data-field", "phone")
    expect(error).to_contain_text("too short")
    expect(lena.get_by_test_id("apply-name")).to_have_value("Lena Berg")  # what was typed stays
    expect(lena.get_by_test_id("apply-category-2")).to_be_checked()
    shot(lena, "lena-1-phone-refused")
    lena.get_by_test_id("apply-phone").fill("030 901820")
    lena.get_by_test_id("apply-submit").click()
    expect(lena.get_by_test_id("apply-sent")).to_be_visible()

    admin = open_page()
    admin_signs_in(admin, site, "/admin/applications")
    card = admin.locator('[data-testid="application"][data-status="pending"]').first
    expect(card).to_contain_text("+4930901820")
    shot(admin, "admin-2-application")
    card.locator("button", has_text="Approve").click()
    expect(admin.get_by_test_id("flash")).to_contain_text("operator lena.berg is created")

    lena.goto(site.url + site.link("lena.berg@example.com", "/set-password"))
    expect(lena.get_by_test_id("set-password-name")).to_have_text("lena.berg")
    lena.get_by_test_id("set-password").fill(NEW_PASSWORD)
    lena.get_by_test_id("set-password-repeat").fill(NEW_PASSWORD)
    lena.get_by_test_id("set-password-submit").click()
    lena.wait_for_url(re.compile(r"/login$"))
    expect(lena.get_by_test_id("flash")).to_contain_text("Sign in as lena.berg")
    lena.get_by_test_id("login-name").fill("lena.berg")
    lena.get_by_test_id("login-password").fill(NEW_PASSWORD)
    lena.get_by_test_id("login-submit").click()
    lena.wait_for_url(re.compile(r"/operator$"))
    expect(lena.get_by_test_id("signed-in-as")).to_have_text("lena.berg (operator)")
    shot(lena, "lena-2-signed-in")
    with site.sessions() as session:
        actions = {a.action for a in session.query(AuditEntry).filter(AuditEntry.actor == "admin:ada")}
    assert "access.application.approved" in actions

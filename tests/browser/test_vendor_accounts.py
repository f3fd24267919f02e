"""The vendor's way in, in a real browser (Debian's Chromium) against a real server, mail read from
the .eml files the outbox writes: apply as a vendor (a wrong phone number refused first, what was
typed kept) → an admin approves on /admin/applications → the new vendor user sets a password through
the e-mailed link, signs in and lands on /vendor → invites a colleague on /vendor/team (who sets a
password from their own mail) → makes an API key, shown once, that works on the vendor API."""

from __future__ import annotations

import re

import httpx
import pytest
from access_support import AccessSite, small_catalog, start_access_site
from browser_support import chromium_path, shot

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
    workspace = small_catalog(tmp_path_factory.mktemp("vendor-accounts-catalog"), embedder)
    site, server = start_access_site(workspace, tmp_path_factory.mktemp("vendor-accounts-outbox"), access="open")
    add_user(site.sessions, "ada", "admin", ADMIN_PASSWORD)
    yield site
    server.stop()


def sign_in(page, site: AccessSite, name: str, password: str, where: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + "/login")
    page.get_by_test_id("login-name").fill(name)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(re.escape(where) + "$"))


def set_password(page, site: AccessSite, address: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + site.link(address, "/set-password"))
    expect(page.get_by_test_id("set-password-name")).to_have_text(name)
    page.get_by_test_id("set-password").fill(NEW_PASSWORD)
    page.get_by_test_id("set-password-repeat").fill(NEW_PASSWORD)
    page.get_by_test_id("set-password-submit").click()
    page.wait_for_url(re.compile(r"/login$"))


def test_apply_approve_sign_in_invite_and_a_key(site: AccessSite, open_page) -> None:
    lena = open_page()
    lena.goto(site.url + "/")
    lena.get_by_test_id("nav-apply-vendor").click()  # "Sell with us" in every visitor's header
    lena.wait_for_url(site.url + "/apply/vendor")
    lena.get_by_test_id("apply-company").fill("Lumen Lights")
    lena.get_by_test_id("apply-contact").fill("Lena Berg")
    lena.get_by_test_id("apply-email").fill("lena@lumen-lights.com")
    lena.get_by_test_id("apply-country").select_option("DE")
    lena.get_by_test_id("apply-phone").fill("12")
    lena.get_by_test_id("apply-website").fill("lumen-lights.com")
    lena.get_by_test_id("apply-submit").click()
    error = lena.get_by_test_id("apply-error")
    expect(error).to_have_attribute("data-field", "phone")
    expect(error).to_contain_text("too short")
    expect(lena.get_by_test_id("apply-company")).to_have_value("Lumen Lights")  # what was typed stays
    expect(lena.get_by_test_id("apply-country")).to_have_value("DE")
    shot(lena, "vendor-1-phone-refused")
    lena.get_by_test_id("apply-phone").fill("030 901820")
    lena.get_by_test_id("apply-submit").click()
    expect(lena.get_by_test_id("apply-sent")).to_be_visible()
    assert "Lumen Lights" in site.mails_to("lena@lumen-lights.com")[-1]

    admin = open_page()
    admin.goto(site.url + "/admin/applications")
    admin.wait_for_url(re.compile(r"/login\?next="))
    admin.get_by_test_id("login-name").fill("ada")
    admin.get_by_test_id("login-password").fill(ADMIN_PASSWORD)
    admin.get_by_test_id("login-submit").click()
    admin.wait_for_url(site.url + "/admin/applications")
    card = admin.locator('[data-testid="vendor-application"][data-status="pending"]').first
    expect(card).to_contain_text("+4930901820")
    expect(card).to_contain_text("https://lumen-lights.com")
    shot(admin, "vendor-2-admin-review")
    card.locator("button", has_text="Approve").click()
    expect(admin.get_by_test_id("flash")).to_contain_text("vendor Lumen Lights is created")

    set_password(lena, site, "lena@lumen-lights.com", "lena")
    sign_in(lena, site, "lena", NEW_PASSWORD, "/vendor")
    expect(lena.get_by_test_id("signed-in-as")).to_have_text("lena (vendor)")

    lena.get_by_test_id("vendor-nav-team").click()
    lena.wait_for_url(re.compile(r"/vendor/team$"))
    lena.get_by_test_id("invite-email").fill("not-an-address")
    lena.locator("#invite-email").evaluate("e => e.type = 'text'")  # past the browser's own check
    lena.get_by_test_id("invite-submit").click()
    expect(lena.get_by_test_id("invite-error")).to_have_attribute("data-field", "email")
    expect(lena.get_by_test_id("invite-email")).to_have_value("not-an-address")
    lena.get_by_test_id("invite-email").fill("max@lumen-lights.com")
    lena.get_by_test_id("invite-submit").click()
    expect(lena.get_by_test_id("flash")).to_contain_text("Invited: max")
    expect(lena.locator('[data-testid="member"][data-name="max"]')).to_have_attribute("data-active", "yes")

    lena.get_by_test_id("key-name").fill("back office")
    lena.get_by_test_id("key-create").click()
    secret = lena.get_by_test_id("new-key-secret").input_value()
    assert secret.startswith("vvk_")
    expect(lena.locator('[data-testid="api-key"][data-active="yes"]')).to_have_count(1)
    shot(lena, "vendor-3-key-shown-once")
    lena.goto(site.url + "/vendor/team")
    expect(lena.get_by_test_id("new-key")).to_have_count(0)
    assert secret not in lena.content() and secret[:12] in lena.content()
    answer = httpx.get(site.url + "/api/vendor/orders", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    lena.reload()
    expect(lena.locator('[data-testid="api-key"]').first).not_to_contain_text("never")  # last used: now
    shot(lena, "vendor-4-team")

    max_ = open_page()
    set_password(max_, site, "max@lumen-lights.com", "max")
    sign_in(max_, site, "max", NEW_PASSWORD, "/vendor")

    lena.get_by_test_id("confirm-off-max").check()
    lena.get_by_test_id("switch-off-max").click()
    expect(lena.get_by_test_id("flash")).to_contain_text("max is switched off")
    expect(lena.locator('[data-testid="member"][data-name="max"]')).to_have_attribute("data-active", "no")
    max_.goto(site.url + "/vendor/team")
    max_.wait_for_url(re.compile(r"/login"))  # signed out at once

    with site.sessions() as session:
        actions = {a.action for a in session.query(AuditEntry)}
    assert {"access.vendor_application.approved", "vendor.colleague_invited", "vendor.api_key_created"} <= actions

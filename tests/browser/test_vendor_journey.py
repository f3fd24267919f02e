"""One vendor's whole journey in a real Chromium against a real server, as the issue's "done means"
lists it: apply → an admin approves → the vendor sets a password from the mail and signs in →
uploads a catalog zip → follows the job to `done` on the page → downloads the reject report → finds
a new product on /vendor/products → a customer's photo request is offered that product and paid →
the vendor sees it in the outbox → marks the order shipped → the customer's receipt shows tracking.

Each step has its own, more thorough test (test_vendor_accounts, test_vendor_uploads,
test_vendor_products, test_vendor_outbox_in_browser); this one proves the steps join up for one
vendor made from nothing, not for a vendor the fixtures created."""

from __future__ import annotations

import re

import httpx
import pytest
from access_support import AccessSite, small_catalog, start_access_site
from browser_support import chromium_path
from catalogs import product_photo
from delivery_support import ADDRESS, SHIPMENT
from sqlalchemy import select
from upload_support import catalog_zip

from catalog.db import Product, Vendor
from vision.embedder import open_embedder
from workflow import claims, offers_service
from workflow.models import CustomerRequest, User
from workflow.request_tokens import token_hash
from workflow.users import add_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.skipif(chromium_path() is None, reason="no system Chromium (set VITRINE_CHROMIUM)")

ADMIN_PASSWORD = "amber lantern drifts north"
VENDOR_PASSWORD = "violet tractor sings quietly"
OPERATOR_PASSWORD = "copper kettle hums softly"
APPLICANT = "nora@nordlicht.example.com"


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = small_catalog(tmp_path_factory.mktemp("vendor-journey-catalog"), embedder)
    site, server = start_access_site(
        workspace, tmp_path_factory.mktemp("vendor-journey-outbox"), access="open", index_refresh_s=0.3
    )
    add_user(site.sessions, "ada", "admin", ADMIN_PASSWORD)
    add_user(site.sessions, "olga", "operator", OPERATOR_PASSWORD)
    yield site
    server.stop()


def _sign_in(page, site: AccessSite, name: str, password: str, where: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + "/login")
    page.get_by_test_id("login-name").fill(name)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(re.escape(where) + "$"))


def _offer_and_pay(site: AccessSite, product_id: int, photo: bytes) -> tuple[str, int]:
    """A customer's photo request, offered `product_id` by operator olga and paid with a delivery
    address: (the customer's token, the request id)."""
    with httpx.Client(base_url=site.url, timeout=60) as http:
        made = http.post(
            "/api/requests", data={"email": "buyer@example.com"}, files={"photo": ("p.png", photo, "image/png")}
        )
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        with site.sessions() as session:
            request_id = session.scalar(
                select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token))
            )
            olga = session.scalar(select(User).where(User.name == "olga"))
        claims.claim(site.sessions, request_id, olga, 600)
        [offer] = offers_service.send_offers(
            site.sessions,
            request_id,
            olga,
            [offers_service.OfferDraft(product_id, "42.00")],
            24,
            site.app.state.outbox,  # type: ignore[attr-defined]
            "/r/{token}",
        )
        paid = http.post(
            f"/api/requests/{token}/offers/{offer}/accept", json={"card": "4242424242424242", "delivery": ADDRESS}
        )
        assert paid.status_code == 200, paid.text
    return token, request_id


def test_a_new_vendor_from_application_to_a_shipped_order(site: AccessSite, open_page, tmp_path) -> None:
    nora = open_page()
    nora.goto(site.url + "/apply/vendor")
    nora.get_by_test_id("apply-company").fill("Nordlicht")
    nora.get_by_test_id("apply-contact").fill("Nora Lind")
    nora.get_by_test_id("apply-email").fill(APPLICANT)
    nora.get_by_test_id("apply-country").select_option("FR")
    nora.get_by_test_id("apply-phone").fill("01 42 68 53 00")
    nora.get_by_test_id("apply-website").fill("nordlicht.example.com")
    nora.get_by_test_id("apply-submit").click()
    expect(nora.get_by_test_id("apply-sent")).to_be_visible()

    admin = open_page()
    admin.goto(site.url + "/admin/applications")  # signed out: the sign-in page, then back here
    admin.get_by_test_id("login-name").fill("ada")
    admin.get_by_test_id("login-password").fill(ADMIN_PASSWORD)
    admin.get_by_test_id("login-submit").click()
    admin.wait_for_url(site.url + "/admin/applications")
    card = admin.locator('[data-testid="vendor-application"][data-status="pending"]', has_text="Nordlicht")
    expect(card).to_contain_text("+33142685300")
    card.locator("button", has_text="Approve").click()
    expect(admin.get_by_test_id("flash")).to_contain_text("vendor Nordlicht is created")

    nora.goto(site.url + site.link(APPLICANT, "/set-password"))
    user_name = nora.get_by_test_id("set-password-name").inner_text()
    nora.get_by_test_id("set-password").fill(VENDOR_PASSWORD)
    nora.get_by_test_id("set-password-repeat").fill(VENDOR_PASSWORD)
    nora.get_by_test_id("set-password-submit").click()
    nora.wait_for_url(re.compile(r"/login$"))
    _sign_in(nora, site, user_name, VENDOR_PASSWORD, "/vendor")

    # Upload: 40 good rows and 2 with a price that is no number; the page follows the job in place.
    archive = catalog_zip(tmp_path / "upload", 40, start=900, bad_rows=2)
    nora.get_by_test_id("vendor-nav-catalogs").click()
    nora.wait_for_url(re.compile(r"/vendor/catalogs$"))
    nora.set_input_files("#catalog-file", str(archive))
    nora.click("[data-testid=catalog-upload]")
    nora.wait_for_url(re.compile(r"/vendor/catalogs$"))
    nora.evaluate("window.__samePage = true")
    job = nora.locator("tr[data-testid=catalog-job]").first
    job.and_(nora.locator("[data-status=done]")).wait_for(timeout=120_000)
    assert nora.evaluate("window.__samePage") is True  # progress came without a reload
    assert job.locator("[data-testid=job-outcome]").inner_text().startswith("40 in, 2 rejected")
    report = nora.request.get(site.url + job.locator("[data-testid=job-report]").get_attribute("href"))
    assert report.status == 200 and "SKU-00940,price" in report.text()

    # The products are Nordlicht's, and only Nordlicht's.
    with site.sessions() as session:
        vendor_id = session.scalar(select(Vendor.id).where(Vendor.name == "Nordlicht"))
        product = session.scalar(select(Product).where(Product.vendor_id == vendor_id, Product.sku == "SKU-00907"))
        assert product is not None
        product_id, title = product.id, product.title
        assert session.scalar(select(Product.vendor_id).where(Product.sku == "SKU-00001")) != vendor_id
    nora.get_by_test_id("vendor-nav-products").click()
    nora.wait_for_url(re.compile(r"/vendor/products"))
    nora.goto(site.url + "/vendor/products?q=SKU-00907")
    expect(nora.locator("body")).to_contain_text(title)

    # A customer is offered one of them and pays; the vendor sees it and ships it.
    token, request_id = _offer_and_pay(site, product_id, product_photo(907))
    nora.get_by_test_id("vendor-nav-outbox").click()
    nora.wait_for_url(re.compile(r"/vendor/outbox$"))
    row = nora.locator(f'[data-testid="outbox-row"][data-request="{request_id}"]').first
    expect(row).to_have_attribute("data-state", "paid")
    assert "buyer@example.com" not in nora.content()

    nora.get_by_test_id("vendor-nav-orders").click()
    nora.wait_for_url(re.compile(r"/vendor/orders$"))
    order = nora.locator('[data-testid="vendor-order"][data-state="to_ship"]').first
    number = order.get_attribute("data-number")
    expect(order).to_contain_text(ADDRESS["line1"])
    nora.get_by_test_id(f"ship-carrier-{number}").fill(SHIPMENT["carrier"])
    nora.get_by_test_id(f"ship-tracking-{number}").fill(SHIPMENT["tracking"])
    nora.get_by_test_id(f"confirm-ship-{number}").check()
    nora.get_by_test_id(f"ship-{number}").click()
    nora.wait_for_url(re.compile(r"/vendor/orders$"))
    expect(nora.locator(f'[data-testid="vendor-order"][data-number="{number}"]')).to_have_attribute(
        "data-state", "shipped"
    )
    captures = [op for op, _ in site.app.state.payments.calls if op == "capture"]  # type: ignore[attr-defined]
    assert len(captures) == 1

    customer = open_page()
    customer.goto(f"{site.url}/r/{token}/receipt")
    expect(customer.get_by_test_id("receipt-tracking")).to_contain_text(SHIPMENT["tracking"])

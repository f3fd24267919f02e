"""The vendor's outbox and orders in a real Chromium: a paid order shows in the outbox (with the
customer's photo, never their e-mail) and in the orders; the vendor marks it shipped (confirming
first) and the customer's receipt shows the tracking. The vendor flags an offered product "not
available": the operator's workbench shows the mark and the customer can no longer accept it."""

from __future__ import annotations

import re

import httpx
import pytest
from browser_support import shot
from catalogs import product_photo
from delivery_support import SHIPMENT, paid_request
from sqlalchemy import select

from catalog.db import Product
from workflow import claims, offers_service
from workflow.models import CustomerRequest, User
from workflow.request_tokens import token_hash
from workflow.users import add_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
PASSWORD = "correct horse battery"


class NoMail:
    def send_template(self, *args: object, **kwargs: object) -> None:
        pass


@pytest.fixture(scope="module")
def people(site):  # type: ignore[no-untyped-def]
    """Operator olga, and vendor user vince of the vendor of the catalog's first product (the one
    `paid_request` offers)."""
    add_user(site.sessions, "olga", "operator", PASSWORD)
    with site.sessions() as session:
        vendor_id = session.scalar(select(Product.vendor_id).order_by(Product.id).limit(1))
    add_user(site.sessions, "vince", "vendor", PASSWORD, vendor_id=vendor_id)
    return site


def _sign_in(page, site, name: str, where: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + "/login")
    page.get_by_test_id("login-name").fill(name)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(where))


def _request_id(site, token: str) -> int:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))


def _offered(site, row: int) -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    """A request with one offer of the first product, not yet answered: (token, request id, offer id)."""
    with httpx.Client(base_url=site.url, timeout=60) as http:
        made = http.post(
            "/api/requests",
            data={"email": "buyer@example.com"},
            files={"photo": ("p.png", product_photo(row), "image/png")},
        )
        assert made.status_code == 201, made.text
        token = made.json()["token"]
    request_id = _request_id(site, token)
    with site.sessions() as session:
        olga = session.scalar(select(User).where(User.name == "olga"))
        product = session.scalar(select(Product.id).order_by(Product.id).limit(1))
    claims.claim(site.sessions, request_id, olga, 600)
    [offer] = offers_service.send_offers(
        site.sessions, request_id, olga, [offers_service.OfferDraft(product, "25.00")], 24, NoMail(), "/r/{token}"
    )
    return token, request_id, offer


def test_a_paid_order_is_shipped_by_the_vendor_and_the_customer_sees_the_tracking(people, open_page) -> None:
    site = people
    token = paid_request(site, "olga", product_photo(23))
    request_id = _request_id(site, token)
    vendor = open_page()
    _sign_in(vendor, site, "vince", "/vendor")
    vendor.goto(site.url + "/vendor/outbox")
    rows = vendor.locator(f'[data-testid="outbox-row"][data-request="{request_id}"]')
    expect(rows.first).to_have_attribute("data-state", "paid")  # the offered product first, then candidates
    row = rows.first
    expect(row.locator("img")).to_have_attribute("src", f"/vendor/outbox/{request_id}/photo")
    assert row.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")  # the photo loads
    assert "buyer@example.com" not in vendor.content()
    shot(vendor, "vendor-outbox-1-paid")

    vendor.get_by_test_id("vendor-nav-orders").click()
    vendor.wait_for_url(re.compile(r"/vendor/orders$"))
    order = vendor.locator('[data-testid="vendor-order"][data-state="to_ship"]').first
    number = order.get_attribute("data-number")
    expect(order).to_contain_text("Unter den Linden 1")
    vendor.get_by_test_id(f"ship-carrier-{number}").fill(SHIPMENT["carrier"])
    vendor.get_by_test_id(f"ship-tracking-{number}").fill(SHIPMENT["tracking"])
    shot(vendor, "vendor-orders-1-to-ship")
    vendor.get_by_test_id(f"ship-{number}").click()  # not confirmed: the browser asks for the box first
    expect(vendor.locator(f'[data-number="{number}"]')).to_have_attribute("data-state", "to_ship")
    vendor.get_by_test_id(f"confirm-ship-{number}").check()
    vendor.get_by_test_id(f"ship-{number}").click()
    vendor.wait_for_url(re.compile(r"/vendor/orders$"))
    shipped = vendor.locator(f'[data-testid="vendor-order"][data-number="{number}"]')
    expect(shipped).to_have_attribute("data-state", "shipped")
    expect(shipped.get_by_test_id("vendor-order-state")).to_contain_text(SHIPMENT["tracking"])
    shot(vendor, "vendor-orders-2-shipped")
    assert [op for op, _ in site.payments.calls].count("capture") == 1

    customer = open_page()
    customer.goto(f"{site.url}/r/{token}/receipt")
    expect(customer.get_by_test_id("receipt-tracking")).to_contain_text(SHIPMENT["tracking"])
    shot(customer, "vendor-orders-3-customer-receipt")


def test_not_available_shows_on_the_workbench_and_stops_the_customer(people, open_page) -> None:
    site = people
    token, request_id, offer = _offered(site, 24)
    vendor = open_page()
    _sign_in(vendor, site, "vince", "/vendor")
    vendor.goto(site.url + "/vendor/outbox")
    row = vendor.locator(f'[data-testid="outbox-row"][data-offer="{offer}"]')
    expect(row).to_have_attribute("data-state", "offered")
    vendor.get_by_test_id(f"confirm-unavailable-{offer}").check()
    vendor.get_by_test_id(f"unavailable-{offer}").click()
    vendor.wait_for_url(re.compile(r"/vendor/outbox$"))
    expect(vendor.locator(f'[data-testid="outbox-row"][data-offer="{offer}"]')).to_have_attribute(
        "data-state", "unavailable"
    )
    shot(vendor, "vendor-outbox-2-not-available")

    operator = open_page()
    _sign_in(operator, site, "olga", "/operator")
    operator.goto(f"{site.url}/operator/requests/{request_id}")
    expect(operator.get_by_test_id(f"offer-unavailable-{offer}")).to_be_visible()
    shot(operator, "vendor-outbox-3-operator-sees-the-mark")
    operator.goto(site.url + "/operator?view=unavailable")
    expect(operator.get_by_test_id("view-unavailable")).to_contain_text("Not available")

    customer = open_page()
    customer.goto(f"{site.url}/r/{token}")
    expect(customer.get_by_test_id("offer-unavailable")).to_be_visible()
    expect(customer.get_by_test_id(f"accept-{offer}")).to_have_count(0)

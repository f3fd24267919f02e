"""Delivery and money in a real Chromium: the customer accepts with an address (a bad phone number
is refused with the address kept), gets an order number and a receipt page; the operator fulfils
with carrier and tracking and the customer sees the tracking. A budget with a currency keeps the
instant matches within it (a price in a currency without a rate is shown apart, labelled), and the
workbench warns about an offer over the budget."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from browser_support import chromium_path, shot
from catalogs import product_photo
from delivery_support import ADDRESS, SHIPMENT, fill_address, fill_shipment
from sqlalchemy import select, update
from webapp import build_catalog, start_site

from catalog.db import Product
from vision.embedder import open_embedder
from workflow import claims, offers_service, rates
from workflow.models import CustomerRequest, User
from workflow.request_tokens import token_hash
from workflow.users import add_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (set VITRINE_CHROMIUM)")

PASSWORD = "correct horse battery"
TEST_CARD = "4242424242424242"
TOKEN_URL = re.compile(r"/r/[A-Za-z0-9_-]{32,}$")


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    """A catalog in EUR (10.50-39.50) with one product re-priced in INR (a rate exists) and one in
    JPY (no rate), so budgets meet all three cases."""
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("delivery-catalog"), embedder)
    site, server = start_site(workspace)
    add_user(site.sessions, "olga", "operator", PASSWORD)
    with site.sessions() as session:
        rates.save_rates(session, [rates.check_rate("INR", "90", "2026-12-01", "test table")])
        session.execute(update(Product).where(Product.sku == "SKU-00001").values(currency="INR", price=Decimal(1350)))
        session.execute(update(Product).where(Product.sku == "SKU-00002").values(currency="JPY", price=Decimal(900)))
        session.commit()
    yield site
    server.stop()


def _send_photo(page, site, tmp_path: Path, row: int, budget: str = "", currency: str = "EUR") -> str:  # type: ignore[no-untyped-def]
    photo = tmp_path / f"photo-{row}.jpg"
    photo.write_bytes(product_photo(row, size=300))
    page.goto(site.url + "/")
    page.get_by_test_id("photo-input").set_input_files(photo)
    page.get_by_test_id("budget-input").fill(budget)
    page.get_by_test_id("budget-currency").select_option(currency)
    page.get_by_test_id("email-input").fill("ada@example.com")
    page.get_by_test_id("submit-request").click()
    page.wait_for_url(TOKEN_URL)
    return page.url.rsplit("/", 1)[1]


def _offer(site, token: str, price: str, sku: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Olga claims the request and offers product `sku` at `price`: (request id, offer id)."""
    with site.sessions() as session:
        request = session.scalar(select(CustomerRequest).where(CustomerRequest.token_sha256 == token_hash(token)))
        olga = session.scalar(select(User).where(User.name == "olga"))
        product = session.scalar(select(Product.id).where(Product.sku == sku).limit(1))
        request_id = request.id
    claims.claim(site.sessions, request_id, olga, 600)
    drafts = [offers_service.OfferDraft(product, price)]
    [offer] = offers_service.send_offers(
        site.sessions, request_id, olga, drafts, 24, site.app.state.outbox, "/r/{token}"
    )
    return request_id, offer


def _sign_in(page, site) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + "/login")
    page.get_by_test_id("login-name").fill("olga")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(r"/operator"))


def test_accept_with_an_address_then_receipt_then_tracking(site, open_page, tmp_path: Path) -> None:
    customer, operator = open_page(), open_page()
    token = _send_photo(customer, site, tmp_path, 3)
    request_id, offer = _offer(site, token, "25.00", "SKU-00003")
    customer.reload()

    fill_address(customer, offer)
    customer.get_by_test_id(f"delivery-phone-{offer}").fill("12")  # not a German number
    customer.get_by_test_id(f"card-input-{offer}").fill(TEST_CARD)
    customer.get_by_test_id(f"accept-{offer}").click()
    expect(customer.get_by_test_id("error-message")).to_contain_text("phone number is not valid for DE")
    expect(customer.get_by_test_id(f"delivery-line1-{offer}")).to_have_value(ADDRESS["line1"])  # kept
    expect(customer.get_by_test_id(f"delivery-country-{offer}")).to_have_value("DE")
    expect(customer.get_by_test_id(f"card-input-{offer}")).to_have_value("")  # the card is never echoed
    shot(customer, "delivery-1-refused-phone")

    customer.get_by_test_id(f"delivery-phone-{offer}").fill(ADDRESS["phone"])
    customer.get_by_test_id(f"card-input-{offer}").fill(TEST_CARD)
    customer.get_by_test_id(f"accept-{offer}").click()
    expect(customer.get_by_test_id("request-status")).to_have_attribute("data-status", "paid")
    number = customer.get_by_test_id("order-number").inner_text()
    assert re.fullmatch(r"V-\d{4}-\d{6}", number)
    expect(customer.get_by_test_id("flash")).to_contain_text(number)
    customer.get_by_test_id("receipt-link").click()
    expect(customer.get_by_test_id("receipt-number")).to_have_text(number)
    expect(customer.get_by_test_id("receipt-price")).to_have_text("25.00 EUR")
    expect(customer.get_by_test_id("receipt-address")).to_contain_text("Unter den Linden 1")
    expect(customer.get_by_test_id("receipt-payment")).to_contain_text("card ending 4242")
    expect(customer.get_by_test_id("receipt-tracking")).to_have_text("not shipped yet")
    shot(customer, "delivery-2-receipt")

    _sign_in(operator, site)
    operator.goto(f"{site.url}/operator/requests/{request_id}")
    expect(operator.get_by_test_id("workbench-order")).to_contain_text(f"Order {number}")
    expect(operator.get_by_test_id("workbench-order")).to_contain_text("Unter den Linden 1, 10117 Berlin, Germany")
    fill_shipment(operator)
    operator.get_by_test_id("confirm-fulfil").check()
    operator.get_by_test_id("fulfil").click()
    expect(operator.get_by_test_id("request-status")).to_have_attribute("data-status", "fulfilled")

    customer.goto(f"{site.url}/r/{token}")
    expect(customer.get_by_test_id("order-tracking")).to_contain_text(SHIPMENT["tracking"])
    expect(customer.get_by_test_id("order-tracking")).to_contain_text(SHIPMENT["carrier"])
    customer.goto(f"{site.url}/r/{token}/receipt")
    expect(customer.get_by_test_id("receipt-tracking")).to_have_text(f"{SHIPMENT['carrier']} {SHIPMENT['tracking']}")


def test_a_budget_in_a_currency_filters_the_matches_and_the_workbench_warns(site, open_page, tmp_path: Path) -> None:
    customer, operator = open_page(), open_page()
    token = _send_photo(customer, site, tmp_path, 1, budget="20", currency="EUR")
    expect(customer.get_by_test_id("request-budget")).to_have_text("20.00 EUR")
    matches = customer.get_by_test_id("instant-match")
    expect(matches.first).to_be_visible()
    for i in range(matches.count()):
        card = matches.nth(i)
        price, currency = card.locator(".price").inner_text().split()[:2]
        state = card.get_attribute("data-budget")
        if currency == "EUR":
            assert Decimal(price) <= 20 and state == "within", (price, state)
        elif currency == "INR":  # 1350 INR = 15.00 EUR at 90 per EUR: within, shown converted
            assert state == "within"
            expect(card.get_by_test_id("converted-price")).to_have_text("≈ 15.00 EUR")
        else:  # JPY has no rate: kept apart and labelled, never compared
            assert state == "no_rate"
            expect(card.get_by_test_id("no-rate")).to_be_visible()
    assert "INR" in customer.locator("#matches").inner_text()  # the INR product (the photo's own) is in
    shot(customer, "budget-1-matches")

    request_id, _ = _offer(site, token, "35.00", "SKU-00003")  # in EUR, over the 20 EUR budget
    _sign_in(operator, site)
    operator.goto(f"{site.url}/operator/requests/{request_id}")
    expect(operator.get_by_test_id("workbench-budget")).to_have_text("20.00 EUR")
    warning = operator.get_by_test_id("sent-offer").get_by_test_id("budget-warning")
    expect(warning).to_contain_text("Over the customer's budget of 20.00 EUR")
    shot(operator, "budget-2-workbench-warning")

""" "Where can I get it nearby" in a real Chromium: a customer types a postcode with their photo → the
instant matches show the stores holding them with distance, quantity and "open now" → "in stock
within 10 km" re-runs the search and keeps the page full → an unknown place is refused with what was
typed kept → the operator sees the stores on the candidates and offers pickup at a store → the
customer accepts with pickup (name and phone, no address) → the receipt shows the store's address
and opening hours. And "Use my location": the browser's geolocation, granted in the context."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_support import VIEWPORT, chromium_path, shot
from catalogs import product_photo
from nearby_support import ALWAYS_OPEN, LYON, PARIS, add_store, product_id
from sqlalchemy import select
from webapp import build_catalog, start_site

from catalog.opening_hours import format_opening_hours
from vision.embedder import open_embedder
from workflow import claims
from workflow.models import CustomerRequest, User
from workflow.request_tokens import token_hash
from workflow.users import add_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (set VITRINE_CHROMIUM)")

PASSWORD = "correct horse battery"
TEST_CARD = "4242424242424242"
TOKEN_URL = re.compile(r"/r/[A-Za-z0-9_-]{32,}")
PARIS_SKUS = [f"SKU-{i:05d}" for i in range(10)]
LYON_SKUS = [f"SKU-{i:05d}" for i in range(10, 20)]


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    """acme's products 0-9 held in a Paris store, 10-19 in a Lyon store (open around the clock)."""
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("nearby-browser"), embedder)
    site, server = start_site(workspace, rate_limits="off")
    add_user(site.sessions, "olga", "operator", PASSWORD)
    add_store(site.sessions, "acme", "PAR-1", PARIS, {product_id(site.sessions, "acme", s): 3 for s in PARIS_SKUS})
    add_store(site.sessions, "acme", "LYO-1", LYON, {product_id(site.sessions, "acme", s): 5 for s in LYON_SKUS})
    yield site
    server.stop()


def _send_photo(page, site, tmp_path: Path, row: int, place: str = "") -> str:  # type: ignore[no-untyped-def]
    photo = tmp_path / f"photo-{row}.jpg"
    photo.write_bytes(product_photo(row, size=300))
    page.goto(site.url + "/")
    page.get_by_test_id("photo-input").set_input_files(photo)
    if place:
        page.get_by_test_id("place-input").fill(place)
    page.get_by_test_id("email-input").fill("ada@example.com")
    page.get_by_test_id("submit-request").click()
    page.wait_for_url(TOKEN_URL)
    return page.url.split("#")[0].rsplit("/", 1)[1]


def _request_id(site, token: str) -> int:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))


def test_postcode_then_nearby_filter_then_pickup_offer_accept_and_receipt(site, open_page, tmp_path: Path) -> None:
    customer, operator = open_page(), open_page()
    token = _send_photo(customer, site, tmp_path, 3, place="75001")
    expect(customer.get_by_test_id("location-label")).to_contain_text("Paris")
    stores = customer.locator('[data-testid="instant-match"] [data-testid="nearby-store"]')
    expect(stores.first).to_be_visible()
    assert {stores.nth(i).get_attribute("data-code") for i in range(stores.count())} <= {"PAR-1", "LYO-1"}
    paris = customer.locator('[data-testid="instant-match"] [data-testid="nearby-store"][data-code="PAR-1"]')
    expect(paris.first).to_contain_text("km")
    expect(paris.first).to_contain_text("3 in stock")
    expect(paris.first.get_by_test_id("store-open")).to_have_text("open now")
    assert float(paris.first.get_attribute("data-distance")) < 10
    shot(customer, "nearby-1-matches-with-stores")

    customer.get_by_test_id("within-km").fill("10")
    customer.get_by_test_id("within-apply").click()
    nearby = customer.get_by_test_id("nearby-match")
    expect(nearby).to_have_count(len(PARIS_SKUS))  # every product held within 10 km: the page stays full
    ids = {int(nearby.nth(i).get_attribute("data-product-id")) for i in range(nearby.count())}
    assert ids == {product_id(site.sessions, "acme", s) for s in PARIS_SKUS}
    expect(
        customer.locator('[data-testid="nearby-match"] [data-testid="nearby-store"][data-code="LYO-1"]')
    ).to_have_count(0)
    shot(customer, "nearby-2-in-stock-within-10-km")

    customer.get_by_test_id("place-input").fill("Atlantis")
    customer.get_by_test_id("place-submit").click()
    expect(customer.get_by_test_id("location-error")).to_contain_text("could not find that place")
    expect(customer.get_by_test_id("place-input")).to_have_value("Atlantis")  # kept as typed
    expect(customer.get_by_test_id("location-label")).to_contain_text("Paris")  # the old one still holds
    shot(customer, "nearby-3-unknown-place")

    # The operator: stores on the candidates, and "pickup at PAR-1" on the offer.
    request_id = _request_id(site, token)
    with site.sessions() as session:
        olga = session.scalar(select(User).where(User.name == "olga"))
    claims.claim(site.sessions, request_id, olga, 600)
    operator.goto(site.url + "/login")
    operator.get_by_test_id("login-name").fill("olga")
    operator.get_by_test_id("login-password").fill(PASSWORD)
    operator.get_by_test_id("login-submit").click()
    operator.wait_for_url(re.compile(r"/operator"))
    operator.goto(f"{site.url}/operator/requests/{request_id}")
    expect(operator.get_by_test_id("request-location")).to_contain_text("Paris")
    held = [
        int(row.get_attribute("data-product-id"))
        for row in operator.get_by_test_id("candidate").all()
        if int(row.get_attribute("data-product-id")) in {product_id(site.sessions, "acme", s) for s in PARIS_SKUS}
    ]
    assert held, "some candidate is held in the Paris store"
    product = held[0]
    expect(operator.get_by_test_id(f"nearby-stores-{product}").get_by_test_id("nearby-store")).to_have_attribute(
        "data-code", "PAR-1"
    )
    operator.get_by_test_id(f"pick-{product}").check()
    operator.get_by_test_id(f"price-{product}").fill("25.00")
    pickup = operator.get_by_test_id(f"pickup-{product}")
    pickup.select_option(pickup.locator("option", has_text="Acme PAR-1").get_attribute("value"))
    shot(operator, "nearby-4-operator-pickup-choice")
    operator.get_by_test_id("send-offers").click()
    expect(operator.get_by_test_id("flash")).to_contain_text("offer(s) sent")

    # The customer collects at the store: name and phone, no address.
    customer.goto(f"{site.url}/r/{token}")
    offer = int(customer.get_by_test_id("offer").first.get_attribute("data-offer-id"))
    expect(customer.get_by_test_id(f"pickup-store-{offer}")).to_have_text("Acme PAR-1")
    customer.get_by_test_id(f"pickup-name-{offer}").fill("Marie Curie")
    customer.get_by_test_id(f"pickup-phone-{offer}").fill("01 42 00 00 00")
    customer.get_by_test_id(f"pickup-card-{offer}").fill(TEST_CARD)
    shot(customer, "nearby-5-accept-with-pickup")
    customer.get_by_test_id(f"accept-pickup-{offer}").click()
    expect(customer.get_by_test_id("request-status")).to_have_attribute("data-status", "paid")
    expect(customer.get_by_test_id("order-pickup")).to_contain_text("Acme PAR-1")
    customer.get_by_test_id("receipt-link").click()
    expect(customer.get_by_test_id("receipt-store")).to_contain_text("Acme PAR-1")
    expect(customer.get_by_test_id("receipt-store")).to_contain_text("rue de Rivoli")
    expect(customer.get_by_test_id("receipt-store")).to_contain_text("Marie Curie")
    expect(customer.get_by_test_id("receipt-store-hours")).to_have_text(format_opening_hours(ALWAYS_OPEN))
    shot(customer, "nearby-6-receipt-with-store")


def test_use_my_location_asks_the_browser_only_when_pressed(site, chromium, tmp_path: Path) -> None:
    context = chromium.new_context(
        viewport=VIEWPORT, permissions=["geolocation"], geolocation={"latitude": LYON[0], "longitude": LYON[1]}
    )
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        token = _send_photo(page, site, tmp_path, 12)  # no place typed: nothing shared
        expect(page.get_by_test_id("location-label")).to_have_count(0)
        expect(page.locator('[data-testid="nearby-store"]')).to_have_count(0)
        page.get_by_test_id("use-my-location").click()
        expect(page.get_by_test_id("location-label")).to_have_text("your device's location")
        lyon = page.locator('[data-testid="instant-match"] [data-testid="nearby-store"][data-code="LYO-1"]')
        expect(lyon.first).to_be_visible()
        assert float(lyon.first.get_attribute("data-distance")) < 1
        shot(page, "nearby-7-device-location")
        with site.sessions() as session:
            from workflow.locations import location_of

            where = location_of(session, _request_id(site, token))
        assert where is not None and where.source == "device" and abs(where.lat - LYON[0]) < 0.01

        page.get_by_test_id("forget-location").click()
        expect(page.get_by_test_id("location-label")).to_have_count(0)
        with site.sessions() as session:
            from workflow.locations import location_of

            assert location_of(session, _request_id(site, token)) is None
    finally:
        context.close()
    assert errors == []

"""The three journeys in a real browser (Debian's Chromium driven by Playwright) against a real server:
the customer sends a photo and sees the request; an operator signs in, claims, refines and sends two
offers; the customer accepts one with the test card and sees the confirmation. Plus: a product titled
with a script tag renders as text, and a bad upload gets a clear message. Every page is saved as a
full-page screenshot (see browser_support.screenshot_dir)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from browser_support import FLIPKART, build_browser_catalog, chromium_path, shot
from catalogs import product_photo
from delivery_support import fill_address, fill_shipment
from sqlalchemy import func, select
from webapp import SCRIPT_TITLE, start_site

from vision.embedder import open_embedder
from workflow import claims, offers_service
from workflow.models import AuditEntry, Candidate, CustomerRequest, Offer, Payment, User
from workflow.request_tokens import token_hash
from workflow.users import add_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (set VITRINE_CHROMIUM)")

PASSWORD = "correct horse battery"
TEST_CARD = "4242424242424242"
TOKEN_URL = re.compile(r"/r/[A-Za-z0-9_-]{32,}$")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    """The running site and the real watches in its catalog."""
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace, watches = build_browser_catalog(tmp_path_factory.mktemp("browser-catalog"), embedder)
    site, server = start_site(workspace)
    for name in ("olga", "omar"):
        add_user(site.sessions, name, "operator", PASSWORD)
    yield site, watches
    server.stop()


@pytest.fixture(scope="module")
def site(shop):
    return shop[0]


@pytest.fixture(scope="module")
def watches(shop) -> list[dict[str, str]]:
    return shop[1]


# --- steps (shared by the single journeys and the whole loop) ------------------------------------


def _photo_of(watch: dict[str, str]) -> Path:
    return FLIPKART / "images" / watch["image"]


def _request(site, token: str) -> CustomerRequest:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        request = session.scalar(select(CustomerRequest).where(CustomerRequest.token_sha256 == token_hash(token)))
        assert request is not None
        session.expunge(request)
        return request


def customer_sends_a_photo(page, site, photo: Path, words: str, budget: str, email: str, currency: str = "") -> str:  # type: ignore[no-untyped-def]
    """Fill the home page form and submit; returns the token of the request page landed on."""
    page.goto(site.url + "/")
    expect(page.get_by_test_id("test-banner")).to_have_text("TEST MODE — no money moves")
    page.get_by_test_id("photo-input").set_input_files(photo)
    page.get_by_test_id("words-input").fill(words)
    page.get_by_test_id("budget-input").fill(budget)
    if currency:
        page.get_by_test_id("budget-currency").select_option(currency)
    page.get_by_test_id("email-input").fill(email)
    expect(page.get_by_test_id("photo-error")).to_be_hidden()
    shot(page, "customer-1-home-form")
    page.get_by_test_id("submit-request").click()
    page.wait_for_url(TOKEN_URL)
    expect(page.get_by_test_id("request-status")).to_have_attribute("data-status", "queued")
    shot(page, "customer-2-request-page")
    return page.url.rsplit("/", 1)[1]


def operator_signs_in(page, site, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site.url + "/operator")  # not signed in: sent to the sign-in page, then back
    page.wait_for_url(re.compile(r"/login\?next=/operator$"))
    page.get_by_test_id("login-name").fill(name)
    page.get_by_test_id("login-password").fill(PASSWORD)
    shot(page, "operator-1-sign-in")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(r"/operator$"))
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"{name} (operator)")


def operator_claims_and_refines(page, site, request_id: int) -> None:  # type: ignore[no-untyped-def]
    """Claim from the queue, drag a crop on the photo, add words and filters, search again."""
    row = page.locator(f'[data-testid="queue-row"][data-request-id="{request_id}"]')
    expect(row).to_be_visible()
    shot(page, "operator-2-queue")
    row.get_by_test_id(f"claim-{request_id}").click()
    page.wait_for_url(re.compile(rf"/operator/requests/{request_id}$"))
    expect(page.get_by_test_id("request-status")).to_have_attribute("data-status", "claimed")
    expect(page.get_by_test_id("claim-holder")).to_contain_text("Claimed by")
    expect(page.get_by_text("(search round 0)")).to_be_visible()  # round 0: the instant matches

    photo = page.get_by_test_id("query-photo")
    page.wait_for_function("() => document.getElementById('query-photo').naturalWidth > 0")
    box = photo.bounding_box()
    assert box is not None and box["width"] > 50
    page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.8 * box["width"], box["y"] + 0.9 * box["height"], steps=6)
    page.mouse.up()
    filled = [float(page.get_by_test_id(f"crop-{n}").input_value()) for n in "xywh"]
    assert filled == pytest.approx([0.1, 0.2, 0.7, 0.7], abs=0.02)
    expect(page.locator("#crop-box")).to_be_visible()
    page.get_by_test_id("refine-words").fill("analog watch")
    page.get_by_test_id("vendor").fill("flipkart")
    page.get_by_test_id("max-price").fill("5000")
    page.get_by_test_id("search-again").click()
    expect(page.get_by_text("(search round 1)")).to_be_visible()

    # the filters hold on the page and in the stored round; the crop survives the reload
    assert float(page.get_by_test_id("crop-w").input_value()) == pytest.approx(filled[2], abs=1e-3)
    rows = page.get_by_test_id("candidate")
    expect(rows.first).to_be_visible()
    for text in rows.locator(".help").all_inner_texts():
        vendor, _category, price = (part.strip() for part in text.split("·"))
        assert vendor == "flipkart" and Decimal(price.split()[0]) <= 5000, text
    with site.sessions() as session:
        latest = session.scalars(
            select(Candidate).where(Candidate.request_id == request_id, Candidate.round == 1)
        ).all()
        assert len(latest) == rows.count() > 0
        assert latest[0].query["vendor"] == "flipkart" and latest[0].query["crop"] == pytest.approx(filled, abs=1e-3)
    shot(page, "operator-3-workbench-refined")


def operator_sends_two_offers(page, site, request_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Tick the two best candidates, price and annotate them, send; returns the two product ids."""
    rows = page.get_by_test_id("candidate")
    products = [int(rows.nth(i).get_attribute("data-product-id")) for i in range(2)]
    prices = ["1299.00", "849.50"]
    notes = ["The closest match: same dial and strap.", "A cheaper one <b>in stock</b>."]
    for product, price, note in zip(products, prices, notes, strict=True):
        page.get_by_test_id(f"pick-{product}").check()
        page.get_by_test_id(f"price-{product}").fill(price)
        page.get_by_test_id(f"note-{product}").fill(note)
    page.get_by_test_id("send-offers").click()
    expect(page.get_by_test_id("flash")).to_have_text("2 offer(s) sent to the customer.")
    expect(page.get_by_test_id("request-status")).to_have_attribute("data-status", "offers_sent")
    expect(page.locator('[data-testid="sent-offer"][data-status="sent"]')).to_have_count(2)
    shot(page, "operator-4-offers-sent")
    with site.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "offers_sent"
        offers = session.scalars(select(Offer).where(Offer.request_id == request_id).order_by(Offer.id)).all()
        assert [(o.product_id, str(o.price), o.note, o.status) for o in offers] == [
            (product, price, note, "sent") for product, price, note in zip(products, prices, notes, strict=True)
        ]
    return products


def customer_accepts_the_first_offer(page, site, token: str) -> None:  # type: ignore[no-untyped-def]
    """Open the private link, see two offers, pay the first with the test card, see the confirmation."""
    authorised_before = sum(1 for op, _ in site.payments.calls if op == "authorise")
    page.goto(f"{site.url}/r/{token}")
    cards = page.get_by_test_id("offer")
    expect(cards).to_have_count(2)
    expect(page.get_by_test_id("request-status")).to_have_attribute("data-status", "offers_sent")
    expect(page.get_by_test_id("test-banner")).to_be_visible()
    first, second = (int(cards.nth(i).get_attribute("data-offer-id")) for i in range(2))
    expect(cards.nth(0).get_by_test_id("offer-status")).to_have_text("sent")
    with site.sessions() as session:
        price = str(session.get(Offer, first).price)
        currency = session.get(Offer, first).currency
    expect(page.get_by_test_id(f"accept-{first}")).to_have_text(f"Accept and pay {price} {currency}")
    shot(page, "customer-3-offers")
    fill_address(page, first)
    page.get_by_test_id(f"card-input-{first}").fill(TEST_CARD)
    page.get_by_test_id(f"accept-{first}").click()

    expect(page.get_by_test_id("request-status")).to_have_attribute("data-status", "paid")
    expect(page.get_by_test_id("request-status")).to_have_text("Paid (card authorised)")
    expect(page.get_by_test_id("flash")).to_contain_text("accepted")
    expect(page.get_by_test_id("payment")).to_contain_text(f"{price} {currency} · card ending 4242")
    expect(page.get_by_test_id("payment-status")).to_have_text("authorised")
    expect(page.locator(f'[data-offer-id="{first}"]')).to_have_attribute("data-status", "accepted")
    expect(page.locator(f'[data-offer-id="{second}"]')).to_have_attribute("data-status", "superseded")
    expect(page.locator(f'[data-offer-id="{second}"]').get_by_test_id("offer-status")).to_have_text("superseded")
    expect(page.get_by_test_id("test-banner")).to_have_text("TEST MODE — no money moves")
    expect(page.locator("form.accept")).to_have_count(0)
    shot(page, "customer-4-confirmation")
    request = _request(site, token)
    assert request.status == "paid" and request.accepted_offer_id == first
    with site.sessions() as session:
        payments = session.scalars(select(Payment).where(Payment.request_id == request.id)).all()
        assert [(p.status, p.test, str(p.amount), p.card_last4) for p in payments] == [
            ("authorised", True, price, "4242")
        ]
    assert sum(1 for op, _ in site.payments.calls if op == "authorise") == authorised_before + 1


def _queued_request(site, photo: bytes, words: str = "") -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """A request made over plain HTTP (for journeys that start later in the story)."""
    client = site.client()
    try:
        response = client.post(
            "/requests",
            {"email": "setup@example.com", "words": words, "budget": ""},
            files={"photo": ("photo.jpg", photo, "image/jpeg")},
        )
    finally:
        client.close()
    assert response.status_code == 303, response.text
    token = response.headers["location"].rsplit("/", 1)[1]
    return token, _request(site, token).id


# --- the journeys --------------------------------------------------------------------------------


def test_customer_sends_a_photo_and_sees_the_request(site, watches, open_page) -> None:
    watch = watches[3]
    page = open_page()
    token = customer_sends_a_photo(
        page, site, _photo_of(watch), "the same watch, with a <b>black</b> strap", "6000", "ana@example.com", "INR"
    )  # the watch costs 4995 INR: within the budget (the EUR products have no rate here: shown apart)
    assert len(token) >= 32
    expect(page.get_by_test_id("request-status")).to_have_text("Waiting for an operator")
    expect(page.get_by_test_id("request-words")).to_have_text("the same watch, with a <b>black</b> strap")
    expect(page.get_by_test_id("eta")).to_contain_text("Expected reply in about")
    page.wait_for_function("() => document.querySelector('[data-testid=request-photo]').naturalWidth > 0")
    matches = page.get_by_test_id("instant-match")
    expect(matches).to_have_count(site.settings.instant_matches)
    expect(matches.first.get_by_test_id("product-title")).to_have_text(watch["product_name"])
    request = _request(site, token)
    assert (request.status, request.email, request.words) == (
        "queued",
        "ana@example.com",
        "the same watch, with a <b>black</b> strap",
    )
    assert (str(request.budget), request.budget_currency) == ("6000.00", "INR")
    page.goto(site.url + "/r/" + token[:-1] + ("A" if token[-1] != "A" else "B"))  # one character off
    expect(page.get_by_test_id("error")).to_have_attribute("data-status", "404")


def test_operator_claims_refines_and_sends_two_offers(site, watches, open_page) -> None:
    _token, request_id = _queued_request(site, _photo_of(watches[5]).read_bytes(), "a sporty one")
    page = open_page()
    operator_signs_in(page, site, "olga")
    operator_claims_and_refines(page, site, request_id)
    operator_sends_two_offers(page, site, request_id)
    with site.sessions() as session:
        olga = session.scalar(select(User).where(User.name == "olga"))
        offers = session.scalars(select(Offer).where(Offer.request_id == request_id)).all()
        assert [o.created_by_id for o in offers] == [olga.id, olga.id]
        trail = session.scalars(
            select(AuditEntry.action).where(AuditEntry.request_id == request_id, AuditEntry.actor == "operator:olga")
        ).all()
        assert {"claim.taken", "search.refined"} <= set(trail)


def test_customer_accepts_an_offer_and_sees_the_confirmation(site, watches, open_page) -> None:
    token, request_id = _queued_request(site, _photo_of(watches[7]).read_bytes())
    with site.sessions() as session:
        omar = session.scalar(select(User).where(User.name == "omar"))
        products = session.scalars(
            select(Candidate.product_id).where(Candidate.request_id == request_id).order_by(Candidate.rank).limit(2)
        ).all()
    claims.claim(site.sessions, request_id, omar, 600)
    drafts = [offers_service.OfferDraft(p, price, "") for p, price in zip(products, ("499.00", "650.00"), strict=True)]
    offers_service.send_offers(site.sessions, request_id, omar, drafts, 24, site.app.state.outbox, "/r/{token}")
    customer_accepts_the_first_offer(open_page(), site, token)


def test_the_whole_loop_with_two_people_at_once(site, watches, open_page) -> None:
    """Customer and operator in two browser contexts (separate cookies), one request end to end."""
    customer, operator = open_page(), open_page()
    customer.clock.install()  # the request page polls every 20 s; the test moves its clock instead of waiting
    token = customer_sends_a_photo(customer, site, _photo_of(watches[0]), "this one", "", "lee@example.com")
    request_id = _request(site, token).id
    operator_signs_in(operator, site, "omar")
    operator_claims_and_refines(operator, site, request_id)
    operator_sends_two_offers(operator, site, request_id)
    expect(customer.get_by_test_id("offer")).to_have_count(0)
    customer.clock.fast_forward(21_000)  # the poll sees the news and reloads the page by itself
    expect(customer.get_by_test_id("offer")).to_have_count(2)
    expect(customer.get_by_test_id("offer-note").first).to_have_text("The closest match: same dial and strap.")
    expect(customer.get_by_test_id("offer-note").nth(1)).to_have_text("A cheaper one <b>in stock</b>.")
    customer_accepts_the_first_offer(customer, site, token)
    operator.reload()
    expect(operator.get_by_test_id("request-status")).to_have_attribute("data-status", "paid")
    expect(operator.get_by_test_id("payment-row")).to_contain_text("authorised")
    operator.get_by_test_id("fulfil").click()  # the confirmation is not ticked: the browser keeps the form
    expect(operator.get_by_test_id("request-status")).to_have_attribute("data-status", "paid")
    fill_shipment(operator)
    operator.get_by_test_id("confirm-fulfil").check()
    operator.get_by_test_id("fulfil").click()
    expect(operator.get_by_test_id("request-status")).to_have_attribute("data-status", "fulfilled")
    shot(operator, "operator-5-fulfilled")


# --- escaping and bad input ----------------------------------------------------------------------


def test_a_script_title_renders_as_text_and_never_runs(site, open_page, tmp_path: Path) -> None:
    photo = tmp_path / "shot.jpg"
    photo.write_bytes(product_photo(5))  # product 5 of acme is titled with a script tag
    page = open_page()
    token = customer_sends_a_photo(page, site, photo, "", "", "x@example.com")
    best = page.get_by_test_id("instant-match").first.get_by_test_id("product-title")
    expect(best).to_have_text(SCRIPT_TITLE)
    assert page.locator("main script").count() == 0
    scripts = page.evaluate("() => [...document.querySelectorAll('script')].map(s => s.getAttribute('src'))")
    assert scripts == ["/static/app.js", "/static/nearby.js"]  # only the site's own files, no inline script
    shot(page, "escaping-customer-page")
    request_id = _request(site, token).id
    operator = open_page()
    operator_signs_in(operator, site, "olga")
    operator.goto(f"{site.url}/operator/requests/{request_id}")
    expect(operator.get_by_test_id("candidate-title").first).to_have_text(SCRIPT_TITLE)
    assert operator.locator("main script").count() == 0
    # the open_page fixture fails the test if any dialog fired


def _request_count(site) -> int:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.scalar(select(func.count()).select_from(CustomerRequest))


def test_a_text_file_named_jpg_gets_a_clear_message(site, open_page, tmp_path: Path) -> None:
    before = _request_count(site)
    page = open_page()
    page.goto(site.url + "/")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    page.get_by_test_id("photo-input").set_input_files(notes)  # caught in the page: the type is not an image
    expect(page.get_by_test_id("photo-error")).to_have_text("This file is not a photo (text/plain).")
    fake = tmp_path / "holiday.jpg"
    fake.write_text("hello, this is a text file\n" * 10)
    page.get_by_test_id("photo-input").set_input_files(fake)  # looks like a JPEG: only the server can tell
    expect(page.get_by_test_id("photo-error")).to_be_hidden()
    page.get_by_test_id("email-input").fill("bad@example.com")
    page.get_by_test_id("submit-request").click()
    error = page.get_by_test_id("error")
    expect(error).to_have_attribute("data-status", "415")  # not an image at all: unsupported media type
    expect(error.get_by_role("heading")).to_have_text("This photo cannot be used")
    expect(page.get_by_test_id("error-message")).to_contain_text("not an image")
    expect(page.get_by_test_id("error-hint")).to_contain_text("Nothing was saved.")
    expect(page.get_by_test_id("error-hint")).to_contain_text("choose it (or another one) again")
    expect(page.get_by_test_id("email-input")).to_have_value("bad@example.com")  # the form keeps what was typed
    shot(page, "customer-bad-upload")
    assert _request_count(site) == before
    expect(page.get_by_test_id("request-form")).to_be_visible()  # the refusal is shown on the form itself

"""The operator's lists in a real browser: tabs with counts, a request with offers out still
reachable from "Offers out", and counts that update in place in a polite live region instead of
the page reloading itself every 30 s (axe-core rated the old meta refresh critical). Every page
photographed is checked with axe-core by `browser_support.shot`."""

from __future__ import annotations

import pytest
from browser_support import VIEWPORT, shot
from catalogs import product_photo
from sqlalchemy import select

from workflow.models import CustomerRequest
from workflow.users import add_user

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def lina(site) -> str:
    add_user(site.sessions, "lina", "operator", PASSWORD)
    return "lina"


def _customer_request(site, seed: int) -> int:  # type: ignore[no-untyped-def]
    """A request sent through the JSON API, as a customer would; its id (looked up as staff would)."""
    answer = site.client().http.post(
        "/api/requests",
        data={"email": f"c{seed}@example.com", "words": f"lamp {seed}"},
        files={"photo": ("p.png", product_photo(seed), "image/png")},
    )
    assert answer.status_code == 201, answer.text
    with site.sessions() as session:
        return session.scalar(select(CustomerRequest.id).where(CustomerRequest.words == f"lamp {seed}"))


def test_lists_show_requests_with_offers_out_and_counts_update_in_place(site, lina, chromium) -> None:
    first = _customer_request(site, 501)
    page = chromium.new_page(viewport=VIEWPORT)
    page.clock.install()
    page.goto(site.url + "/login")
    page.fill("#name", lina)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.goto(site.url + "/operator")
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    queue_count = int(page.locator('[data-count="queue"]').inner_text())
    assert queue_count >= 1
    shot(page, "lists 1 queue")

    # A request the operator sends offers for leaves the queue but stays in "Offers out" and "Mine".
    page.click(f'[data-testid="claim-{first}"]')
    page.locator('input[name="product_id"]').first.check()
    page.click('[data-testid="send-offers"]')
    page.goto(site.url + "/operator?view=offers_out")
    expect(page.locator(f'[data-testid="view-row"][data-request-id="{first}"]')).to_be_visible()
    expect(page.locator('[data-testid="view-offers_out"]')).to_have_attribute("aria-current", "page")
    shot(page, "lists 2 offers out")

    # Follow-up (item 2): from "Offers out" the operator opens the request, ticks another candidate and
    # adds it while the first offer stays open.
    page.click(f'[data-testid="open-{first}"]')
    expect(page.get_by_test_id("follow-up-note")).to_be_visible()
    page.locator('input[name="product_id"]').nth(1).check()
    expect(page.get_by_test_id("send-offers")).to_have_text("Add the ticked offers")
    page.click('[data-testid="send-offers"]')
    expect(page.locator('[data-testid="sent-offer"][data-status="sent"]')).to_have_count(2)
    shot(page, "lists 2b follow-up offer added")

    # A new request arrives: after the next poll the count changes where it is, and the live region says so.
    page.goto(site.url + "/operator")
    page.evaluate("window.vitrineMarker = 'still the same page'")
    before = int(page.locator('[data-count="queue"]').inner_text())
    _customer_request(site, 502)
    page.clock.fast_forward(31_000)
    expect(page.locator('[data-count="queue"]')).to_have_text(str(before + 1))
    expect(page.locator("#live-counts")).to_contain_text(f"Queue: {before + 1} (was {before})")
    assert page.locator("#live-counts").get_attribute("aria-live") == "polite"
    assert page.evaluate("window.vitrineMarker") == "still the same page"  # no reload
    shot(page, "lists 3 counts updated")
    page.close()

"""Customer comfort in a real browser: times in the customer's own time zone, "This is the one" on an
instant match, and finding earlier requests again by e-mail. Pages are checked with axe-core by
`browser_support.shot`."""

from __future__ import annotations

import pytest
from browser_support import VIEWPORT, shot
from catalogs import product_photo

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def test_times_are_local_and_the_customer_picks_an_instant_match(site, chromium) -> None:
    client = site.client()
    created = client.http.post(
        "/api/requests",
        data={"email": "kolkata@example.com", "words": "a watch"},
        files={"photo": ("p.png", product_photo(12), "image/png")},
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert client.post(f"/r/{token}/messages", {"body": "Any in gold?"}).status_code == 303
    client.close()
    context = chromium.new_context(viewport=VIEWPORT, timezone_id="Asia/Kolkata", locale="en-GB")
    page = context.new_page()
    page.goto(f"{site.url}/r/{token}")
    stamp = page.locator("time[data-local]").first
    expect(stamp).to_contain_text("GMT+5:30")  # India's time, not UTC
    assert stamp.get_attribute("title").endswith("UTC")
    first = page.get_by_test_id("instant-match").first
    title = first.get_by_test_id("product-title").inner_text()
    first.get_by_role("button", name="This is the one").click()
    expect(page.get_by_test_id("flash")).to_contain_text(f"{title} is the one")
    expect(page.get_by_test_id("message").last).to_contain_text(f"This is the one: {title}")
    shot(page, "comfort 1 picked")

    page.goto(f"{site.url}/my-requests")
    page.fill("#find-email", "kolkata@example.com")
    page.get_by_test_id("find-submit").click()
    expect(page.get_by_test_id("requests-mailed")).to_contain_text("kolkata@example.com")
    shot(page, "comfort 2 find my requests")
    context.close()

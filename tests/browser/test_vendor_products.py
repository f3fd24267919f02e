"""The vendor's products in a real Chromium: the overview links to them, a search by SKU, the next
page, a product's page with its images, a price edit (a bad one refused, what was typed kept), and a
deactivation that asks for confirmation first and takes the product out of search."""

from __future__ import annotations

import httpx
from browser_support import shot
from catalogs import product_photo
from sqlalchemy import select

from catalog.db import Product, Vendor
from catalog.ids import product_id
from workflow import vendor_products
from workflow.users import add_user

PASSWORD = "correct horse battery"


def _sign_in(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()


def _found(url: str, seed: int) -> list[str]:
    files = {"photo": ("p.jpg", product_photo(seed), "image/jpeg")}
    answer = httpx.post(f"{url}/api/search", files=files, data={"k": "10"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return [hit["sku"] for hit in answer.json()["results"]]


def test_vendor_searches_pages_edits_and_deactivates_a_product(site, open_page, monkeypatch) -> None:
    monkeypatch.setattr(vendor_products, "VENDOR_PAGE", 12)  # the server runs in this process
    with site.sessions() as session:
        acme = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
    add_user(site.sessions, "pia", "vendor", PASSWORD, vendor_id=acme)
    page = open_page()
    _sign_in(page, site.url, "pia")
    page.goto(site.url + "/vendor")
    assert page.get_by_test_id("count-products").inner_text() == "30"
    shot(page, "vendor overview")

    page.get_by_test_id("vendor-overview").get_by_role("link", name="Products").click()
    page.wait_for_url(site.url + "/vendor/products")
    assert page.get_by_test_id("vendor-page-info").inner_text() == "Showing 1 to 12 of 30."
    page.get_by_test_id("vendor-next").click()
    page.wait_for_url("**/vendor/products?page=2")
    assert page.get_by_test_id("vendor-page-info").inner_text() == "Showing 13 to 24 of 30."
    shot(page, "vendor products page 2")

    page.get_by_test_id("vendor-q").fill("sku-00014")
    page.get_by_role("button", name="Search").click()
    rows = page.get_by_test_id("vendor-product")
    rows.first.wait_for()
    assert rows.count() == 1 and "SKU-00014" in rows.first.inner_text()
    rows.first.get_by_test_id("vendor-product-link").click()
    pid = product_id("acme", "SKU-00014")
    page.wait_for_url(f"{site.url}/vendor/products/{pid}")
    assert page.get_by_test_id("product-images").locator("img").count() == 1
    assert page.get_by_test_id("product-images").locator("img").first.evaluate("i => i.naturalWidth") > 0

    page.get_by_test_id("price-input").fill("12,3,4")
    page.get_by_test_id("price-save").click()
    page.get_by_test_id("edit-error").wait_for()
    assert page.get_by_test_id("edit-error").get_attribute("data-field") == "price"
    assert page.get_by_test_id("price-input").input_value() == "12,3,4"  # what was typed is kept
    shot(page, "vendor product bad price")
    page.get_by_test_id("price-input").fill("9.95")
    page.get_by_test_id("price-save").click()
    page.wait_for_url(f"{site.url}/vendor/products/{pid}")
    assert page.get_by_test_id("product-price").inner_text() == "9.95 EUR"

    assert "SKU-00014" in _found(site.url, 14)
    page.get_by_test_id("active-save").click()  # without the box ticked the browser does not send it
    assert page.get_by_test_id("product-state").inner_text().startswith("active")
    with site.sessions() as session:
        assert session.get(Product, pid).active is True
    page.get_by_test_id("active-confirm").check()
    page.get_by_test_id("active-save").click()
    page.get_by_text("Deactivated: no search shows it now.").wait_for()
    assert page.get_by_test_id("product-state").inner_text().startswith("inactive")
    shot(page, "vendor product deactivated")
    assert "SKU-00014" not in _found(site.url, 14)

    page.get_by_test_id("active-confirm").check()
    page.get_by_test_id("active-save").click()
    page.get_by_text("Reactivated: customers can find it again.").wait_for()
    assert _found(site.url, 14)[0] == "SKU-00014"

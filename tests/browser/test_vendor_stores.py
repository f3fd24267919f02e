"""A vendor's stores in a real Chromium: adding a store with mistakes (each field's error shown, what
was typed kept), then correctly; its hours shown back formatted; a stores CSV with a bad row; a stock
snapshot that asks for confirmation first, its rejects listed; the store's stock searched by SKU."""

from __future__ import annotations

from browser_support import shot
from sqlalchemy import select

from catalog.db import Vendor
from workflow.users import add_user

PASSWORD = "correct horse battery"


def _sign_in(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()


def test_vendor_adds_stores_and_sends_stock(site, open_page, tmp_path) -> None:
    with site.sessions() as session:
        acme = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
    add_user(site.sessions, "stella", "vendor", PASSWORD, vendor_id=acme)
    page = open_page()
    _sign_in(page, site.url, "stella")
    page.goto(site.url + "/vendor")
    page.get_by_test_id("vendor-nav-stores").click()
    page.wait_for_url(site.url + "/vendor/stores")

    page.get_by_test_id("store-code").fill("BER-1")
    page.get_by_test_id("store-name").fill("Berlin Mitte")
    page.get_by_test_id("store-country").fill("DE")
    page.get_by_test_id("store-lat").fill("152.5")
    page.get_by_test_id("store-lon").fill("13.40")
    page.get_by_test_id("store-opening_hours").fill("Mo-Fr 9-18")
    page.get_by_test_id("store-phone").fill("030 901820")
    page.get_by_test_id("store-timezone").fill("Europe/Berlin")
    page.get_by_test_id("store-save").click()
    page.get_by_test_id("store-errors").wait_for()
    assert "between -90 and 90" in page.get_by_test_id("store-lat-error").inner_text()
    assert "not a time like 09:00" in page.get_by_test_id("store-opening_hours-error").inner_text()
    assert page.get_by_test_id("store-name").input_value() == "Berlin Mitte"  # kept
    assert page.get_by_test_id("store-lat").get_attribute("aria-invalid") == "true"
    shot(page, "store form with errors")

    page.get_by_test_id("store-lat").fill("52.5200")
    page.get_by_test_id("store-opening_hours").fill("monday-friday 9:00-18:00; sat 10:00-14:00")
    page.get_by_test_id("store-save").click()
    page.wait_for_url(site.url + "/vendor/stores/BER-1")
    assert page.get_by_test_id("store-hours").inner_text().startswith("Mo-Fr 09:00-18:00; Sa 10:00-14:00; Su closed")
    assert page.get_by_test_id("store-code").get_attribute("readonly") is not None

    page.get_by_test_id("vendor-nav-stores").click()
    stores_csv = tmp_path / "stores.csv"
    stores_csv.write_text(
        "code,name,lat,lon,opening_hours\nHAM-1,Hamburg,53.55,9.99,24/7\nBAD-1,Bad,1,1,Mo 25:00-26:00\n"
    )
    page.get_by_test_id("stores-file").set_input_files(str(stores_csv))
    page.get_by_test_id("stores-file-send").click()
    result = page.get_by_test_id("stores-result")
    result.wait_for()
    assert "1 stores added" in result.inner_text() and "not a time of day" in result.inner_text()
    assert page.get_by_test_id("vendor-store").count() == 2

    stock_csv = tmp_path / "stock.csv"
    stock_csv.write_text("store,sku,quantity\nBER-1,SKU-00001,4\nBER-1,SKU-00002,2\nHAM-1,SKU-00001,1\nBER-1,NOPE,1\n")
    page.get_by_test_id("stock-file").set_input_files(str(stock_csv))
    page.get_by_test_id("stock-file-send").click()  # a snapshot without the confirmation
    page.get_by_test_id("stock-file-error").wait_for()
    assert "tick the box" in page.get_by_test_id("stock-file-error").inner_text()
    page.get_by_test_id("stock-file").set_input_files(str(stock_csv))
    page.get_by_test_id("stock-confirm").check()
    page.get_by_test_id("stock-file-send").click()
    page.get_by_test_id("stock-result").wait_for()
    assert page.get_by_test_id("stock-applied").inner_text() == "3"
    assert page.get_by_test_id("stock-rejected").inner_text() == "1"
    assert "NOPE" in page.get_by_test_id("stock-rejects").inner_text()
    shot(page, "stores with a stock upload")

    page.get_by_test_id("vendor-store").filter(has_text="BER-1").get_by_test_id("store-link").click()
    page.wait_for_url(site.url + "/vendor/stores/BER-1")
    assert page.get_by_test_id("store-stock-row").count() == 2
    page.get_by_test_id("stock-q").fill("00002")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/vendor/stores/BER-1?q=00002")
    assert page.get_by_test_id("store-stock-row").count() == 1
    assert page.get_by_test_id("stock-quantity").inner_text() == "2"
    shot(page, "a store and its stock")

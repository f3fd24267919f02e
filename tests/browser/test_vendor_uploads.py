"""A vendor uploads a catalog in a real Chromium: a file with their own column names → the mapping
form (saved under a name) → the job list, updated in place until done → the reject report link →
the new products in the vendor's product list. The upload waits while another job of the same vendor
is under way, so the page is seen to follow it from `queued` to `done` without a reload."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from browser_support import shot
from sqlalchemy import select
from upload_support import catalog_zip, renamed_headers

from catalog.db import IngestJob, Vendor
from workflow.users import add_user

PASSWORD = "correct horse battery"


def _sign_in(page, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_load_state()


def test_vendor_uploads_maps_follows_progress_and_finds_the_products(site, open_page, tmp_path) -> None:
    with site.sessions() as session:
        acme = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
    add_user(site.sessions, "una", "vendor", PASSWORD, vendor_id=acme)
    archive = catalog_zip(tmp_path / "upload", 160, start=700, bad_rows=2)
    theirs = renamed_headers(archive, tmp_path / "spring-catalog.zip", {"sku": "article", "title": "name"})

    with site.sessions() as session:  # a job of the vendor under way (leased by another process)
        now = datetime.now(UTC)
        blocker = IngestJob(
            vendor_id=acme,
            catalog="earlier.csv",
            model_id="",
            status="queued",
            upload_path="/nowhere/earlier.csv",
            file_name="earlier.csv",
            queued_at=now,
            lease_owner="elsewhere",
            lease_until=now + timedelta(minutes=5),
        )
        session.add(blocker)
        session.commit()
        earlier = blocker.id

    page = open_page()
    _sign_in(page, site.url, "una")
    page.goto(site.url + "/vendor/catalogs")
    assert page.locator("h1").inner_text() == "Catalog uploads"
    shot(page, "vendor catalog uploads")
    page.set_input_files("#catalog-file", str(theirs))
    assert "spring-catalog.zip" in page.locator("#catalog-chosen").inner_text()
    page.click("[data-testid=catalog-upload]")
    page.wait_for_url(re.compile(r"/vendor/catalogs/map/[0-9a-f]+$"))

    # The header lacks sku and title: map them to the file's own columns and keep the mapping.
    assert page.locator("[data-testid=map-missing]").inner_text().endswith("sku, title.")
    assert page.locator("#column-sku").input_value() == ""
    assert page.locator("#column-price").input_value() == "price"  # named like the field: chosen already
    page.select_option("#column-sku", "article")
    page.select_option("#column-title", "name")
    page.fill("#save-as", "spring layout")
    shot(page, "vendor catalog mapping")
    page.click("[data-testid=map-submit]")
    page.wait_for_url(site.url + "/vendor/catalogs")
    assert "job" in page.locator("[data-testid=flash]").inner_text()

    page.evaluate("window.__samePage = true")  # gone if the page reloads
    row = page.locator("tr[data-testid=catalog-job]").first
    assert row.get_attribute("data-status") == "queued"  # behind the vendor's job under way
    assert row.locator("[data-testid=job-status]").inner_text() == "queued"
    with site.sessions() as session:  # that job ends: this one's turn
        session.delete(session.get(IngestJob, earlier))
        session.commit()
    row.and_(page.locator("[data-status=done]")).wait_for(timeout=90_000)
    assert page.evaluate("window.__samePage") is True  # updated in place by the script, not reloaded
    assert "162 of 162 rows" in row.locator("[data-testid=job-counts]").inner_text()
    assert row.locator("[data-testid=job-outcome]").inner_text().startswith("160 in, 2 rejected")
    report = row.locator("[data-testid=job-report]")
    shot(page, "vendor catalog job done")
    answer = page.request.get(site.url + report.get_attribute("href"))
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "SKU-00860,price" in answer.text() and "SKU-00861,price" in answer.text()

    # The saved mapping is offered for the next upload, and the products are the vendor's now.
    page.reload()
    assert "spring layout" in page.locator("#catalog-mapping").inner_text()
    page.goto(site.url + "/vendor/products?q=SKU-00705")
    assert "Product number 705" in page.locator("body").inner_text()

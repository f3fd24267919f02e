"""Catalog uploads over the JSON API, against a real server: `POST /api/vendor/catalogs` → 202 and a
job, `GET /api/vendor/jobs/{id}` until done, the reject report as CSV, the new products found by
`/api/search`; refusals (401 without a token, 404 for another vendor's job or report, 422 for an
unknown format or missing columns naming them)."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from catalogs import product_photo
from sqlalchemy import select
from upload_support import catalog_zip, staged_upload
from webapp import Browser, bearer, staffed_site

from catalog.db import IngestJob, Product, Vendor
from vision.embedder import open_embedder

PASSWORD = "correct horse battery"


STAFF = (("acme-shop", "vendor", "acme"), ("globex-shop", "vendor", "globex"))


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    folder = tmp_path_factory.mktemp("vendor-catalogs-api")
    with staffed_site(folder, embedder, PASSWORD, STAFF, rate_limits="off") as site:
        yield site


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def _finished(http: httpx.Client, job_id: int, headers: dict[str, str]) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = http.get(f"/api/vendor/jobs/{job_id}", headers=headers)
        assert job.status_code == 200, job.text
        if job.json()["status"] in ("done", "failed"):
            return job.json()
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job.json()}")


def test_anonymous_callers_get_401(http) -> None:
    assert http.post("/api/vendor/catalogs", files={"file": ("c.csv", b"sku\n")}).status_code == 401
    assert http.get("/api/vendor/jobs/1").status_code == 401
    assert http.get("/api/vendor/jobs/1/report").status_code == 401


def test_upload_runs_as_a_job_with_a_report_and_the_products_become_searchable(site, http, tmp_path) -> None:
    acme, globex = bearer(http, "acme-shop", PASSWORD), bearer(http, "globex-shop", PASSWORD)
    archive = catalog_zip(tmp_path / "upload", 6, start=500, bad_rows=1)
    sent = http.post(
        "/api/vendor/catalogs",
        headers=acme,
        files={"file": ("spring.zip", archive.read_bytes(), "application/zip")},
        data={"sync": "false"},
    )
    assert sent.status_code == 202, sent.text
    job_id = sent.json()["job_id"]
    assert sent.json()["status"] == "queued"

    job = _finished(http, job_id, acme)
    assert job["status"] == "done", job
    assert (job["rows_total"], job["rows_done"], job["accepted"], job["rejected"]) == (7, 7, 6, 1)
    assert job["file_name"] == "spring.zip" and job["percent"] == 100
    assert job["summary"]["accepted"] == 6 and job["summary"]["rejected"] == 1
    assert job["report_url"] == f"/api/vendor/jobs/{job_id}/report"

    report = http.get(job["report_url"], headers=acme)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["sku"], r["field"]) for r in rows] == [("SKU-00506", "price")]

    # Another vendor sees neither the job nor its report; nor does a made-up id.
    assert http.get(f"/api/vendor/jobs/{job_id}", headers=globex).status_code == 404
    assert http.get(f"/api/vendor/jobs/{job_id}/report", headers=globex).status_code == 404
    assert http.get("/api/vendor/jobs/999999", headers=acme).status_code == 404

    # The serving app follows the index: a photo of a new product finds it.
    deadline = time.monotonic() + 30
    while True:
        found = http.post("/api/search", files={"photo": ("p.jpg", product_photo(503), "image/jpeg")}, data={"k": "3"})
        assert found.status_code == 200, found.text
        if found.json()["results"] and found.json()["results"][0]["sku"] == "SKU-00503":
            break
        assert time.monotonic() < deadline, found.json()
        time.sleep(0.3)


def test_unknown_formats_missing_columns_and_unreadable_zips_are_422_saying_why(site, http) -> None:
    acme = bearer(http, "acme-shop", PASSWORD)
    odd = http.post("/api/vendor/catalogs", headers=acme, files={"file": ("catalog.xlsx", b"PK\x03\x04junk")})
    assert odd.status_code == 422, odd.text
    assert "Unknown catalog format '.xlsx'" in odd.json()["message"]

    lacking = http.post(
        "/api/vendor/catalogs", headers=acme, files={"file": ("c.csv", b"article,name\nA1,Lamp\n", "text/csv")}
    )
    assert lacking.status_code == 422, lacking.text
    assert "lacks required column(s): sku, title, price, currency, image" in lacking.json()["message"]

    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("a.csv", "sku\n")
        archive.writestr("b.csv", "sku\n")
    two = http.post("/api/vendor/catalogs", headers=acme, files={"file": ("two.zip", packed.getvalue())})
    assert two.status_code == 422
    assert "two.zip holds: a.csv, b.csv" in two.json()["message"]
    assert "ingest-uploads" not in two.json()["message"]  # the data folder's paths stay private

    broken = http.post("/api/vendor/catalogs", headers=acme, files={"file": ("broken.zip", b"PK\x03\x04" + b"x" * 64)})
    assert broken.status_code == 422, broken.text
    assert "broken.zip is not a zip file that can be read" in broken.json()["message"]
    locked = io.BytesIO()
    with zipfile.ZipFile(locked, "w") as archive:
        archive.writestr("catalog.csv", "sku,title,price,currency,image\n")
    locked = bytearray(locked.getvalue())  # the "encrypted" flag, set in both headers: a password is asked
    for header in (b"PK\x03\x04", b"PK\x01\x02"):
        at = locked.index(header) + (6 if header == b"PK\x03\x04" else 8)
        locked[at] |= 1
    sealed = http.post("/api/vendor/catalogs", headers=acme, files={"file": ("sealed.zip", bytes(locked))})
    assert sealed.status_code == 422, sealed.text
    assert "The catalog inside sealed.zip cannot be read" in sealed.json()["message"]
    assert not list((site.settings.workspace.home / "ingest-uploads").rglob("*.zip"))  # refused: not kept

    unknown = http.post(
        "/api/vendor/catalogs",
        headers=acme,
        files={"file": ("c.csv", b"sku,title\nA1,Lamp\n", "text/csv")},
        data={"mapping": "nope"},
    )
    assert unknown.status_code == 422
    assert "No saved mapping called 'nope'" in unknown.json()["message"]


def test_sync_removes_the_products_the_file_no_longer_lists(site, http, tmp_path) -> None:
    globex = bearer(http, "globex-shop", PASSWORD)
    archive = catalog_zip(tmp_path / "sync", 3, start=30)  # globex has SKU-00030 to SKU-00039
    sent = http.post(
        "/api/vendor/catalogs",
        headers=globex,
        files={"file": ("fewer.zip", archive.read_bytes(), "application/zip")},
        data={"sync": "true"},
    )
    assert sent.status_code == 202, sent.text
    job = _finished(http, sent.json()["job_id"], globex)
    assert (job["status"], job["sync"], job["summary"]["removed"]) == ("done", True, 7)
    with site.sessions() as session:
        skus = session.scalars(select(Product.sku).join(Vendor).where(Vendor.name == "globex")).all()
    assert sorted(skus) == ["SKU-00030", "SKU-00031", "SKU-00032"]


def test_the_page_asks_for_confirmation_before_a_sync_and_keeps_the_choice(site, tmp_path) -> None:
    browser = Browser(site.url)
    try:
        signed_in = browser.post("/login", {"name": "acme-shop", "password": PASSWORD, "next": "/vendor/catalogs"})
        assert signed_in.status_code in (302, 303), signed_in.text
        archive = catalog_zip(tmp_path / "page", 2, start=900)
        refused = browser.post(
            "/vendor/catalogs",
            data={"sync": "on"},
            files={"file": ("all.zip", archive.read_bytes(), "application/zip")},
        )
        assert refused.status_code == 422
        assert "needs your confirmation" in refused.text
        assert 'id="catalog-sync" name="sync" value="on" checked' in refused.text  # the choice is kept
        odd = browser.post("/vendor/catalogs", files={"file": ("c.xlsx", b"junk", "application/octet-stream")})
        assert odd.status_code == 422 and "Unknown catalog format" in odd.text
    finally:
        browser.close()


def test_a_mapping_form_sent_several_times_at_once_queues_one_job(site) -> None:
    """Impatient clicks on "Queue it": each request sees the upload waiting, but only one takes it
    (an atomic rename), so the file is ingested once; the others are told it is queued already."""
    token = staged_upload(site, "acme-shop")
    browser = Browser(site.url)
    try:
        signed_in = browser.post("/login", {"name": "acme-shop", "password": PASSWORD, "next": "/vendor/catalogs"})
        assert signed_in.status_code in (302, 303), signed_in.text
        form = {"column_sku": "article", "column_title": "name", "column_price": "price"}
        form |= {"column_currency": "currency", "column_image": "image", "_csrf_token": browser.token()}
        with ThreadPoolExecutor(4) as clicks:
            sent = list(clicks.map(lambda _: browser.http.post(f"/vendor/catalogs/map/{token}", data=form), range(4)))
        assert all(answer.status_code in (302, 303) for answer in sent), [a.text for a in sent]
        again = browser.http.post(f"/vendor/catalogs/map/{token}", data=form)
        assert again.status_code in (302, 303) and again.headers["location"].startswith("/vendor/catalogs")
    finally:
        browser.close()
    with site.sessions() as session:
        queued = session.scalars(select(IngestJob).where(IngestJob.file_name == "theirs.csv")).all()
    assert len(queued) == 1, [(job.id, job.upload_path) for job in queued]

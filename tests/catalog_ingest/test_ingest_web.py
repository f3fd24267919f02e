"""Images from URLs (a real HTTP server on 127.0.0.1), the SSRF guard, and ingest through the CLI,
including a SIGKILL in the middle of a run."""

from __future__ import annotations

import http.server
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from catalogs import make_rows, product_photo, write_csv
from typer.testing import CliRunner

from catalog_ingest.errors import ImageUnavailable
from catalog_ingest.images import FetchPolicy, UrlFetcher
from cli.main import app

runner = CliRunner()


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        count = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path.startswith("/photo/"):
            return self._send(200, product_photo(int(self.path.split("/")[2].split(".")[0])), "image/jpeg")
        if self.path == "/flaky.jpg":
            return self._send(503, b"busy") if count <= 2 else self._send(200, product_photo(5), "image/jpeg")
        if self.path == "/always-500.jpg":
            return self._send(500, b"broken")
        if self.path == "/to-metadata.jpg":
            return self._redirect("http://169.254.169.254/latest/meta-data/")
        if self.path == "/to-photo.jpg":
            return self._redirect("/photo/7.jpg")
        if self.path == "/page.jpg":
            return self._send(200, b"<!DOCTYPE html><html><body>Not found</body></html>", "image/jpeg")
        if self.path == "/huge.jpg":
            return self._send(200, b"\xff\xd8" + b"\0" * 3_000_000, "image/jpeg")
        if self.path == "/to-file.jpg":
            return self._redirect("file:///etc/passwd")
        if self.path == "/chunked-huge.jpg":  # no Content-Length: only the bytes as they arrive can tell
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"\0" * 100_000)
            except OSError:
                pass  # the fetcher hung up at its limit, as it should
            return None
        if self.path == "/drip.jpg":  # each read well inside the timeout, the whole response not
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the fetcher hung up, as it should
            return None
        if self.path == "/slow.jpg":
            time.sleep(3)
            return self._send(200, product_photo(1), "image/jpeg")
        return self._send(404, b"no")

    def _send(self, status: int, body: bytes, kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _fetcher(**overrides) -> UrlFetcher:
    policy = dict(allow_hosts=frozenset({"127.0.0.1"}), backoff_s=0.01, timeout_s=1.0)
    policy.update(overrides)
    return UrlFetcher(FetchPolicy(**policy))


def test_fetches_retries_and_follows_safe_redirects(server):
    fetcher = _fetcher()
    assert fetcher.fetch(f"{server}/photo/3.jpg") == product_photo(3)
    assert fetcher.fetch(f"{server}/flaky.jpg") == product_photo(5)  # two 503s, then success
    assert fetcher.fetch(f"{server}/to-photo.jpg") == product_photo(7)
    with pytest.raises(ImageUnavailable, match="answered 500, 4 attempts"):
        fetcher.fetch(f"{server}/always-500.jpg")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/to-metadata.jpg", "non-public address, 169.254.169.254"),
        ("/page.jpg", "web page"),
        ("/huge.jpg", "MB limit"),
        ("/slow.jpg", "timed out"),
        ("/to-file.jpg", "only http and https"),
        ("/chunked-huge.jpg", "more than the 2 MB limit"),
        ("/drip.jpg", "took longer than 1 s"),
        ("/missing.jpg", "answered 404"),
    ],
)
def test_refuses_what_is_not_a_safe_image(server, path, words):
    fetcher = _fetcher(max_bytes=2_000_000, retries=0, timeout_s=0.5, total_timeout_s=1.0)
    with pytest.raises(ImageUnavailable, match=re.escape(words)):
        fetcher.fetch(f"{server}{path}")


def test_a_host_allowed_by_name_is_let_through_after_it_resolves(server):
    by_name = server.replace("127.0.0.1", "localhost")
    assert _fetcher(allow_hosts=frozenset({"localhost"})).fetch(f"{by_name}/photo/4.jpg") == product_photo(4)
    with pytest.raises(ImageUnavailable, match="non-public"):  # the name, not what it resolves to
        _fetcher(allow_hosts=frozenset({"example.org"})).fetch(f"{by_name}/photo/4.jpg")


def test_concurrent_fetches_are_limited(server):
    """At most `concurrency` requests are in flight, however many threads ask."""
    from concurrent.futures import ThreadPoolExecutor

    fetcher = _fetcher(concurrency=2, timeout_s=5.0)
    in_flight, peak, lock = 0, 0, threading.Lock()
    fetch = fetcher._get

    def counting_get(*args):  # type: ignore[no-untyped-def]
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return fetch(*args)
        finally:
            with lock:
                in_flight -= 1

    fetcher._get = counting_get  # type: ignore[method-assign]
    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(fetcher.fetch, [f"{server}/slow.jpg"] * 4))
    assert bodies == [product_photo(1)] * 4 and peak == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.jpg",
        "http://localhost/x.jpg",
        "http://10.0.0.8/x.jpg",
        "http://[::1]/x.jpg",
        "http://169.254.169.254/latest/",
        "http://192.168.1.1/a.jpg",
        "ftp://example.com/a.jpg",
        "file:///etc/passwd",
    ],
)
def test_the_address_guard_refuses_private_targets_unless_allowed(url):
    with pytest.raises(ImageUnavailable, match=r"non-public|only http"):
        UrlFetcher(FetchPolicy(retries=0)).fetch(url)


def test_ingest_with_url_images_through_the_cli(server, tmp_path: Path, tiny, monkeypatch):
    monkeypatch.setenv("VITRINE_HOME", str(tmp_path / "home"))
    rows = make_rows(6)
    for i, row in enumerate(rows):
        row["image"] = f"{server}/photo/{i}.jpg"
    rows[5]["image"] = f"{server}/to-metadata.jpg"
    catalog = write_csv(tmp_path / "c.csv", rows)
    model = str(tiny[0])
    refused = runner.invoke(app, ["ingest", str(catalog), "--vendor", "web", "--model", model, "--json"])
    data = json.loads(refused.stdout.strip().splitlines()[-1])
    assert data["accepted"] == 0 and all("non-public" in r["reason"] for r in data["rejects"])
    allowed = runner.invoke(
        app, ["ingest", str(catalog), "--vendor", "web", "--model", model, "--json", "--allow-host", "127.0.0.1"]
    )
    data = json.loads(allowed.stdout.strip().splitlines()[-1])
    assert (
        data["accepted"] == 5 and data["rejects"][0]["row"] == 6 and "169.254.169.254" in data["rejects"][0]["reason"]
    )
    reports = sorted((tmp_path / "home" / "reports").glob("*.csv"))  # named by job number
    assert len(reports) == 2 and "169.254.169.254" in reports[-1].read_text()
    (tmp_path / "q.jpg").write_bytes(product_photo(2))
    found = runner.invoke(app, ["search", str(tmp_path / "q.jpg"), "--model", model, "--k", "2", "--json"])
    assert json.loads(found.stdout)[0]["sku"] == "SKU-00002"
    text = runner.invoke(app, ["search", "--text", "a lamp", "--model", model, "--category", "lamps", "--json"])
    assert {hit["sku"] for hit in json.loads(text.stdout)} == {"SKU-00001", "SKU-00004"}
    doctor = runner.invoke(app, ["doctor", "--json"])
    assert doctor.exit_code == 0 and json.loads(doctor.stdout)["healthy"]
    rebuilt = runner.invoke(app, ["index", "rebuild", "--json"])  # finds the model's store by itself
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout.strip().splitlines()[-1])["count"] == 5
    assert runner.invoke(app, ["doctor", "--json"]).exit_code == 0


def _committed_products(database: Path) -> int:
    """Products the ingest has committed so far, read as another process would (WAL: no blocking)."""
    import sqlite3
    from contextlib import closing

    if not database.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as connection:
            return connection.execute("SELECT count(*) FROM products").fetchone()[0]
    except sqlite3.Error:  # the schema is not there yet
        return 0


def test_sigkill_mid_ingest_then_rerun_completes_consistently(tmp_path: Path, tiny):
    rows = make_rows(1200)
    catalog = write_csv(tmp_path / "c.csv", rows)
    env = {**os.environ, "VITRINE_HOME": str(tmp_path / "home")}
    command = [
        sys.executable,
        "-m",
        "cli",
        "ingest",
        str(catalog),
        "--vendor",
        "acme",
        "--model",
        str(tiny[0]),
    ]
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2]
    )
    database = tmp_path / "home" / "vitrine.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if _committed_products(database) >= 256:  # two batches committed, more in flight
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    rerun = subprocess.run(
        [*command, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert rerun.returncode == 0, rerun.stderr
    data = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert data["accepted"] + data["unchanged"] == 1200 and 256 <= data["unchanged"] < 1200
    doctor = subprocess.run(
        [sys.executable, "-m", "cli", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0 and report["healthy"]
    assert report["models"][0]["vectors_in_store"] == report["models"][0]["images_in_database"] == 1200


@pytest.mark.slow  # a benchmark run end to end: a 40-row catalog ingested in a child process
def test_bench_ingest_reports_rates_and_the_childs_memory(tiny):
    from benchmarks.ingest import unique_jpeg
    from vision.decode import decode_image

    base = product_photo(3)
    assert unique_jpeg(base, 1) != unique_jpeg(base, 2)
    assert decode_image(unique_jpeg(base, 1)).tobytes() == decode_image(base).tobytes()  # same pixels
    result = runner.invoke(app, ["bench", "ingest", "--rows", "40", "--model", "test-tiny", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["accepted"] == 40 and figures["rows_per_s"] > 0 and figures["embed_only_images_per_s"] > 0
    assert 50 < figures["peak_rss_mb"] < 4000
    # CPU per image, whatever the machine's speed or load: inference alone over 256 images, measured to
    # the microsecond (test-tiny takes ~0.1 ms each), and the whole ingest, which decodes 1200x1200
    # JPEGs and starts a Python process besides running the same inference, so costs more per image
    embed_cpu, ingest_cpu = figures["embed_only_cpu_ms_per_image"], figures["ingest_cpu_ms_per_image"]
    assert math.isfinite(embed_cpu) and math.isfinite(ingest_cpu)
    assert 0 < embed_cpu < ingest_cpu
    assert 0 < figures["ingest_cores_busy"] <= os.cpu_count() + 0.5


def test_reject_reports_and_a_doctor_that_finds_each_kind_of_mismatch(tmp_path: Path, tiny, monkeypatch):
    """The reject report files hold every rejected row (row, sku, field, reason) under a file name
    safe for any vendor name; `vitrine doctor` exits 1 and names what disagrees once it does."""
    import csv

    import numpy as np
    from sqlalchemy import select

    from catalog.db import ProductImage, make_engine, session_factory
    from catalog.workspace import Workspace
    from index.vector_store import VectorStore

    home = tmp_path / "home"
    monkeypatch.setenv("VITRINE_HOME", str(home))
    rows = make_rows(6)
    rows[1]["price"] = "-3"
    rows[4]["currency"] = "euro"
    catalog = write_csv(tmp_path / "c.csv", rows)
    model = str(tiny[0])
    result = runner.invoke(app, ["ingest", str(catalog), "--vendor", "acme.com/shop", "--model", model])
    assert result.exit_code == 0, result.output
    csv_reports, json_reports = sorted((home / "reports").glob("*.csv")), sorted((home / "reports").glob("*.json"))
    assert [p.name for p in csv_reports] == ["ingest-000001-acme.com_shop.csv"]
    assert [p.name for p in json_reports] == ["ingest-000001-acme.com_shop.json"]
    assert "ingest-000001-acme.com_shop.csv" in result.output.replace("\n", "")  # the path printed is the one written
    with csv_reports[0].open() as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row"], r["sku"], r["field"]) for r in rejected] == [
        ("2", "SKU-00001", "price"),
        ("5", "SKU-00004", "currency"),
    ]
    assert "negative" in rejected[0]["reason"]
    report = json.loads(json_reports[0].read_text())
    assert report["accepted"] == 4 and [r["sku"] for r in report["rejects"]] == ["SKU-00001", "SKU-00004"]

    healthy = runner.invoke(app, ["doctor", "--json"])
    assert healthy.exit_code == 0 and json.loads(healthy.stdout)["healthy"]
    workspace = Workspace(home)
    engine = make_engine(workspace.database_url)
    with session_factory(engine)() as session:
        images = list(session.scalars(select(ProductImage).order_by(ProductImage.id)))
        model_id = next(iter(p.name for p in (home / "vectors").iterdir()))
        store = VectorStore.open(home / "vectors" / model_id)
        store.delete(np.asarray([images[0].id]))  # a product that lost its vector
        session.delete(images[1])  # a vector whose product row is gone
        session.commit()
    engine.dispose()
    broken = runner.invoke(app, ["doctor", "--json"])
    assert broken.exit_code == 1
    found = json.loads(broken.stdout)["models"][0]
    assert found["images_without_vector"] == {"count": 1, "examples": [images[0].id]}
    assert found["vectors_without_product"] == {"count": 1, "examples": [images[1].id]}

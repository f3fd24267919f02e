"""/metrics, request ids and JSON logs over a real HTTP server (uvicorn) and the real app."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys
from pathlib import Path

import httpx
import pytest
from catalogs import make_rows, product_photo, write_csv
from delivery_support import ADDRESS
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from webapp import build_catalog, start_site

from api.logging_config import JsonFormatter, logging_config
from api.metrics import allowed_networks, client_allowed
from api.request_id import REQUEST_ID, RequestIdFilter, choose_request_id
from catalog.db import Product
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from vision.embedder import open_embedder
from workflow import claims, offers_service
from workflow.models import CustomerRequest, User
from workflow.payments import APPROVED, DECLINED
from workflow.states import RequestStatus
from workflow.users import add_user

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


@pytest.fixture(scope="module")
def site(embedder, tmp_path_factory: pytest.TempPathFactory):
    workspace = build_catalog(tmp_path_factory.mktemp("metrics-catalog"), embedder)
    site, server = start_site(workspace)
    add_user(site.sessions, "alice", "operator", PASSWORD)
    yield site
    server.stop()


@pytest.fixture
def http(site):
    with httpx.Client(base_url=site.url, timeout=60, follow_redirects=False) as client:
        yield client


def scrape(http: httpx.Client) -> str:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when there are none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def samples(text: str, prefix: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name.startswith(prefix)]


def new_request(site, number: int) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    browser = site.client()
    response = browser.post(
        "/requests",
        {"email": "c@example.com", "words": "", "budget": ""},
        files={"photo": ("photo.jpg", product_photo(number), "image/jpeg")},
    )
    browser.close()
    assert response.status_code == 303, response.text
    token = response.headers["location"].rsplit("/", 1)[1]
    with site.sessions() as session:
        request_id = session.scalar(select(func.max(CustomerRequest.id)))
    return token, request_id


def offered(site, request_id: int) -> int:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        alice = session.scalar(select(User).where(User.name == "alice"))
        product = session.scalars(select(Product.id).order_by(Product.id).limit(1)).one()
    claims.claim(site.sessions, request_id, alice, 600)
    draft = [offers_service.OfferDraft(product, "25.00")]
    return offers_service.send_offers(site.sessions, request_id, alice, draft, 24, site.app.state.outbox, "/r/{t}")[0]


# --- requests by route ---------------------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_and_never_by_token(site, http) -> None:
    token, _ = new_request(site, 3)
    before = value(scrape(http), "vitrine_requests_total", path="/r/{token}", method="GET", status_code="200")
    assert http.get(f"/r/{token}").status_code == 200
    assert http.get("/r/not-a-real-token-at-all-xxxxxxxx").status_code == 404
    text = scrape(http)
    assert value(text, "vitrine_requests_total", path="/r/{token}", method="GET", status_code="200") == before + 1
    assert value(text, "vitrine_requests_total", path="/r/{token}", method="GET", status_code="404") >= 1
    latency = value(text, "vitrine_request_duration_seconds_count", path="/r/{token}", method="GET")
    assert latency >= before + 2
    assert value(text, "vitrine_requests_total", path="/requests", method="POST", status_code="303") >= 1
    assert token not in text and "not-a-real-token" not in text  # no raw paths: tokens would leak
    assert not any(s.labels.get("path") in ("/metrics", "/static") for s in samples(text, "vitrine_requests"))


def test_search_stages_and_micro_batch_sizes_are_timed(site, http) -> None:
    before = scrape(http)
    photo = {"photo": ("p.jpg", product_photo(11), "image/jpeg")}
    response = http.post("/api/search", files=photo, data={"k": "3"})
    assert response.status_code == 200, response.text
    assert http.post("/api/search", data={"text": "red mug", "k": "3"}).status_code == 200
    after = scrape(http)
    for stage, grown in (("decode", 1), ("embed", 2), ("index", 2), ("database", 2)):
        name = "vitrine_search_stage_seconds_count"
        assert value(after, name, stage=stage) >= value(before, name, stage=stage) + grown, stage
    assert value(after, "vitrine_search_stage_seconds_sum", stage="embed") > value(
        before, "vitrine_search_stage_seconds_sum", stage="embed"
    )
    for tower in ("image", "text"):
        name = "vitrine_embed_batch_size_count"
        assert value(after, name, tower=tower) >= value(before, name, tower=tower) + 1, tower
    assert value(after, "vitrine_embed_batch_size_sum", tower="image") >= 1


def test_ingest_counts_rows_and_images(site, http, embedder, tmp_path) -> None:
    before = scrape(http)
    rows = make_rows(5, start=200)
    rows[1]["price"] = "not a price"
    summary = ingest_catalog(write_csv(tmp_path / "c.csv", rows), "initech", embedder, Workspace(tmp_path / "home"))
    assert (summary.accepted, len(summary.rejected)) == (4, 1)
    after = scrape(http)
    assert (
        value(after, "vitrine_ingest_rows_total", outcome="accepted")
        == value(before, "vitrine_ingest_rows_total", outcome="accepted") + 4
    )
    assert (
        value(after, "vitrine_ingest_rows_total", outcome="rejected")
        == value(before, "vitrine_ingest_rows_total", outcome="rejected") + 1
    )
    assert (
        value(after, "vitrine_ingest_images_total", outcome="embedded")
        == value(before, "vitrine_ingest_images_total", outcome="embedded") + summary.images_embedded
    )
    assert summary.images_embedded == 4


def test_queue_length_and_waiting_time_come_from_the_database(site, http) -> None:
    _, request_id = new_request(site, 5)
    with site.sessions() as session:
        queued = session.scalar(
            select(func.count(CustomerRequest.id)).where(CustomerRequest.status == RequestStatus.QUEUED.value)
        )
    assert queued >= 1
    text = scrape(http)
    assert value(text, "vitrine_queue_length") == queued
    assert value(text, "vitrine_queue_oldest_wait_seconds") > 0
    offered(site, request_id)  # claimed, then offers sent: it no longer waits
    assert value(scrape(http), "vitrine_queue_length") == queued - 1


def test_payment_outcomes_are_counted(site, http) -> None:
    before = scrape(http)
    for number, card in ((21, DECLINED), (22, APPROVED)):
        token, request_id = new_request(site, number)
        offer = offered(site, request_id)
        response = http.post(
            f"/api/requests/{token}/offers/{offer}/accept",
            json={"card_number": card, "delivery": ADDRESS},
            headers={"Idempotency-Key": token},
        )
        assert response.status_code in (200, 402), response.text
    after = scrape(http)
    for outcome in ("paid", "declined"):
        name = "vitrine_payment_outcomes_total"
        assert value(after, name, outcome=outcome) == value(before, name, outcome=outcome) + 1, outcome


# --- who may read it -------------------------------------------------------------------------------------------------


def test_metrics_are_for_this_machine_unless_configured_and_not_in_the_schema(site, http) -> None:
    assert "/metrics" not in http.get("/schema/openapi.json").json()["paths"]
    site.settings.metrics_from = "10.0.0.0/8"
    try:
        refused = http.get("/metrics")
    finally:
        site.settings.metrics_from = ""
    assert refused.status_code == 403
    assert "VITRINE_METRICS_FROM" in refused.text
    assert http.get("/metrics").status_code == 200


def test_the_allowed_networks_are_checked() -> None:
    assert client_allowed("127.0.0.1", allowed_networks(""))
    assert client_allowed("::1", allowed_networks(""))
    assert not client_allowed("10.1.2.3", allowed_networks(""))
    assert client_allowed("10.1.2.3", allowed_networks("10.0.0.0/8, 192.168.1.7"))
    assert client_allowed("192.168.1.7", allowed_networks("10.0.0.0/8, 192.168.1.7"))
    assert client_allowed("203.0.113.9", allowed_networks("any"))
    assert not client_allowed(None, allowed_networks("any"))
    with pytest.raises(ValueError, match="'intranet' is not a network"):
        allowed_networks("10.0.0.0/8,intranet")


# --- request ids and logs --------------------------------------------------------------------------------------------


def test_every_response_carries_a_request_id_and_a_sane_given_one_is_kept(http) -> None:
    first, second = http.get("/api/health"), http.get("/api/health")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    kept = http.get("/api/health", headers={"X-Request-ID": "proxy-7f3a.42"})
    assert kept.headers["x-request-id"] == "proxy-7f3a.42"
    for forged in ('a" level="ERROR', "x" * 200, "-leading-dash"):
        replaced = http.get("/api/health", headers={"X-Request-ID": forged}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced), forged


def test_log_lines_written_while_handling_a_request_carry_its_id(site, http) -> None:
    """The payment saga logs a declined card (logger vitrine.payments) from a worker thread."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("vitrine.payments")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        token, request_id = new_request(site, 31)
        offer = offered(site, request_id)
        response = http.post(
            f"/api/requests/{token}/offers/{offer}/accept",
            json={"card_number": DECLINED, "delivery": ADDRESS},
            headers={"Idempotency-Key": "decl-31", "X-Request-ID": "trace-declined-31"},
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert response.headers["x-request-id"] == "trace-declined-31"
    declined = [r for r in records if "declined" in r.getMessage()]
    assert declined, [r.getMessage() for r in records]
    assert {r.request_id for r in declined} == {"trace-declined-31"}  # type: ignore[attr-defined]


def test_the_json_formatter_writes_one_object_per_line() -> None:
    formatter = JsonFormatter()
    token = REQUEST_ID.set("abc123")
    try:
        record = logging.LogRecord("vitrine.test", logging.WARNING, __file__, 1, "took %s ms", (12,), None)
        record.vendor = "acme"  # an `extra=` field
        RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "took 12 ms" and entry["level"] == "WARNING" and entry["logger"] == "vitrine.test"
    assert entry["request_id"] == "abc123" and entry["vendor"] == "acme"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        failing = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = formatter.format(failing)
    assert "\n" not in line and "ValueError: bad\\nthing" in json.loads(json.dumps(line))
    assert choose_request_id("ok-1") == "ok-1" and choose_request_id(None) != choose_request_id(None)


def test_the_serve_logging_config_makes_uvicorn_and_app_lines_json() -> None:
    with pytest.raises(ValueError, match="json or text"):
        logging_config("xml")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    config = logging_config("json")
    config["handlers"]["default"]["stream"] = stream
    try:
        logging.config.dictConfig(config)
        logging.getLogger("uvicorn.access").info('127.0.0.1:5 - "GET /api/health HTTP/1.1" 200')
        logging.getLogger("vitrine.web").warning("something to see")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["logger"], e["request_id"]) for e in lines] == [("uvicorn.access", "-"), ("vitrine.web", "-")]


def test_the_example_dashboard_uses_only_metrics_that_exist(http) -> None:
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
    used = {name for p in dashboard["panels"] for t in p["targets"] for name in re.findall(r"vitrine_\w+", t["expr"])}
    assert len(used) >= 8
    exposed = {s.name for f in text_string_to_metric_families(scrape(http)) for s in f.samples}
    assert used <= exposed, used - exposed

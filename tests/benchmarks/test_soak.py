"""`vitrine bench soak`: a short run of mixed traffic against a real server finds no error and reports
per-route latency, the whole flow (requests, offers, accepts) and the server's memory."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks.soak import SoakSettings, run_soak
from cli.main import app

ROUTES = {
    "POST /api/search",
    "POST /api/requests",
    "GET /api/requests/{token}",
    "POST /api/requests/{token}/offers/{id}/accept",
    "POST /operator/next",
    "GET /operator/requests/{id}",
    "POST /operator/requests/{id}/offers",
}


@pytest.mark.slow
def test_a_short_soak_has_no_errors_and_reports_every_route_and_the_memory(store, tiny):
    result = run_soak(SoakSettings(minutes=0.2, clients=4, model="test-tiny", products=200), store, log=lambda _: None)
    assert result["errors"] == 0, result["error_examples"]
    assert result["errors_by_route"] == {}
    assert 12 <= result["seconds"] < 60 and result["operators"] == 1
    assert set(result["routes"]) >= ROUTES, result["routes"]
    for route in ROUTES:
        figures = result["routes"][route]
        assert figures["count"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert result["flow"]["requests_created"] > 0 and result["flow"]["offers_sent"] > 0
    assert result["flow"]["offers_accepted"] > 0
    memory = result["server_rss"]
    assert 50 < memory["start_mb"] <= memory["peak_mb"] and memory["samples"] >= 3
    assert memory["after_warmup_mb"] is not None and memory["growth_after_warmup"] is not None
    json.dumps(result)  # one JSON object


def test_bad_arguments_are_refused_before_anything_starts():
    runner = CliRunner()
    bad_operator = runner.invoke(app, ["bench", "soak", "--url", "http://127.0.0.1:9", "--operator", "alice"])
    assert bad_operator.exit_code == 2 and "NAME:PASSWORD" in bad_operator.output
    no_time = runner.invoke(app, ["bench", "soak", "--minutes", "0"])
    assert no_time.exit_code == 2 and "--minutes" in no_time.output

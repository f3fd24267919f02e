"""`vitrine bench stores` end to end at a small size: the JSON it prints, recall and full pages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.stores import _stock_rows, _towns
from cli.main import app

runner = CliRunner()


def test_stock_rows_are_distinct_per_store_and_skewed() -> None:
    rows = _stock_rows(np.random.default_rng(0), products=2_000, stores=30, rows=6_000)
    assert len(rows) == 6_000
    for store in range(30):
        chosen = rows[rows[:, 0] == store, 1]
        assert len(chosen) == 200 == len(np.unique(chosen))
    counts = np.bincount(rows[:, 1], minlength=2_000)
    assert counts.max() >= 10 * max(1, int(np.median(counts)))  # popular products are in many stores
    assert (rows[:, 2] >= 1).all()


def test_towns_are_real_french_places() -> None:
    towns = _towns()
    assert towns[0][0] == "Paris" and len(towns) == 40
    assert all(41 < lat < 51.5 and -5 < lon < 10 for _, lat, lon, _ in towns)


@pytest.mark.slow
def test_bench_stores_small() -> None:
    result = runner.invoke(
        app, ["bench", "stores", "--products", "3000", "--stores", "40", "--rows", "40000", "--queries", "40", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["stores"] == 40 and figures["stock_rows"] == 40_000 and figures["products"] == 3000
    assert figures["recall_at_10"] >= 0.99  # flat index at this size: exact
    assert figures["held_neighbours_recall_at_10"] >= 0.99
    done, possible = (int(n) for n in figures["full_pages"].split("/"))
    assert possible > 0 and done == possible
    assert figures["unfiltered"]["p50_ms"] > 0 and figures["ratio_p50"] > 0
    assert 0 < figures["allowed_share"]["p50"] < 1


def test_bench_stores_refuses_nonsense() -> None:
    result = runner.invoke(app, ["bench", "stores", "--stores", "10", "--rows", "5"])
    assert result.exit_code == 2
    assert "stock row per" in result.output

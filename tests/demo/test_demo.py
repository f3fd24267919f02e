"""The demo catalog generator, the customer-photo simulator, the committed demo model and the eval harness."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from cli.main import app
from demo.catalog import DemoCatalog, read_queries, write_demo_catalog, write_queries
from demo.photo_simulator import DEFAULT_CONDITIONS, customer_photo
from demo.products import COLOURS, PRODUCT_TYPES, VENDORS, product_spec, product_specs
from demo.render import render_shot
from evaluation.color_histogram import ColorHistogramEmbedder
from evaluation.evaluate import HEADLINE, open_eval_set, run_evaluation
from vision.embedder import open_embedder

REQUIRED_KEYS = ("photo_recall_at_1", "photo_recall_at_10", "photo_mrr", "text_precision_at_10")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_writes_the_same_catalog_and_another_seed_does_not(tmp_path: Path) -> None:
    first = _tree(write_demo_catalog(tmp_path / "a", seed=5, products=20).root)
    again = _tree(write_demo_catalog(tmp_path / "b", seed=5, products=20).root)
    other = _tree(write_demo_catalog(tmp_path / "c", seed=6, products=20).root)
    assert first == again
    assert len(first) == 20 + len(VENDORS) + 1  # images, one CSV per vendor, demo.json
    csvs = [name for name in first if name.endswith(".csv")]
    assert any(first[name] != other.get(name) for name in csvs)
    assert {n for n in first if n.endswith(".jpg")} != {n for n in other if n.endswith(".jpg")}


def test_specs_cover_the_types_and_vendors_and_titles_say_what_is_drawn() -> None:
    specs = product_specs(11, 400)
    assert len({s.category for s in specs}) >= 12
    assert len({s.vendor for s in specs}) >= 3
    assert {s.category for s in specs[: len(PRODUCT_TYPES)]} == {t.category for t in PRODUCT_TYPES}
    for spec in specs:
        title = spec.title.lower()
        assert spec.colour in title and spec.accent in title and spec.shape in title
        if spec.pattern != "plain":
            assert spec.pattern in title
        row = spec.row("images/x.jpg")
        assert row["color"] == spec.colour and row["category"] == spec.category and row["title"] == spec.title
        assert float(row["price"]) > 0
    assert product_spec(11, 7) == specs[7]
    assert [s.title for s in product_specs(12, 50)] != [s.title for s in specs[:50]]


def test_the_drawn_colour_is_the_named_colour() -> None:
    """A plain plastic mug named red is drawn red, and named blue is drawn blue: pictures match titles."""
    base = next(s for s in product_specs(3, 300) if s.type == "mug")
    means = {}
    for colour in ("red", "blue"):
        spec = dataclasses.replace(base, colour=colour, accent="black", material="plastic", pattern="plain")
        pixels = np.asarray(render_shot(spec), np.float32)
        saturated = pixels[(pixels.max(axis=2) - pixels.min(axis=2)) > 60]
        means[colour] = saturated.mean(axis=0)
    assert means["red"][0] > means["red"][2] + 60
    assert means["blue"][2] > means["blue"][0] + 60
    assert np.linalg.norm(means["red"] - np.asarray(COLOURS["red"])) < 80


def test_customer_photo_differs_from_the_shot_and_keeps_its_size() -> None:
    spec = product_spec(4, 3)
    photo = customer_photo(spec, seed=99)
    assert photo.size in (DEFAULT_CONDITIONS.size, DEFAULT_CONDITIONS.size[::-1])
    assert np.asarray(customer_photo(spec, seed=99)).tobytes() == np.asarray(photo).tobytes()
    assert np.asarray(customer_photo(spec, seed=100)).tobytes() != np.asarray(photo).tobytes()
    shot = np.asarray(render_shot(spec).resize(photo.size), np.float32)
    assert np.abs(np.asarray(photo, np.float32) - shot).mean() > 20


def test_a_generated_catalog_ingests_cleanly(tmp_path: Path, tiny) -> None:
    catalog = write_demo_catalog(tmp_path / "catalog", seed=21, products=45)
    embedder = open_embedder("test-tiny")
    workspace = Workspace(tmp_path / "home")
    total = 0
    for vendor, path in catalog.vendor_files.items():
        summary = ingest_catalog(path, vendor, embedder, workspace)
        assert summary.rejected == [] and summary.accepted == summary.rows
        total += summary.accepted
    assert total == 45


def test_demo_cli_writes_a_catalog_and_queries(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "catalog", "--out", str(tmp_path / "c"), "--seed", "2", "--products", "20"])
    assert result.exit_code == 0, result.output
    assert "vitrine ingest" in result.output
    result = runner.invoke(
        app, ["demo", "queries", "--catalog", str(tmp_path / "c"), "--out", str(tmp_path / "q"), "--photos", "5"]
    )
    assert result.exit_code == 0, result.output
    photos, texts = read_queries(tmp_path / "q")
    assert len(photos) == 5 and all(p.file.is_file() for p in photos)
    assert len({t.category for t in texts}) == len(PRODUCT_TYPES)
    bad = runner.invoke(app, ["demo", "queries", "--catalog", str(tmp_path), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "not a demo catalog" in " ".join(bad.output.split())


def test_the_committed_demo_model_resolves_and_embeds_offline(store) -> None:
    directory, manifest = store.resolve("demo")
    assert manifest.source["kind"] == "checkpoint" and manifest.embed_dim == 128
    embedder = open_embedder("demo", store=store)
    spec = product_spec(8, 4)
    vectors = embedder.embed_images([render_shot(spec), customer_photo(spec, 1)])
    texts = embedder.embed_texts(["red mug", "gold hoop earrings"])
    assert vectors.shape == (2, 128) and texts.shape == (2, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert store.resolve("demo")[0] == directory  # the second call reuses the export


@pytest.fixture(scope="module")
def small_eval(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("demo-eval")
    catalog = write_demo_catalog(root / "catalog", seed=77, products=200)
    write_queries(DemoCatalog.open(catalog.root), root / "queries", seed=31337, photos=80)
    return root / "catalog", root / "queries"


def test_demo_model_beats_the_colour_histogram(small_eval, store, vitrine_home: Path) -> None:
    catalog, queries = small_eval
    result = run_evaluation(open_eval_set(catalog, queries), vitrine_home / "eval", "demo", store=store)
    for key in (*REQUIRED_KEYS, *HEADLINE):
        assert 0.0 <= result[key] <= 1.0
        for baseline in ("color_histogram", "random_weights"):
            assert key in result["baselines"][baseline]
    assert result["photo_queries"] == 80 and result["text_queries"] > 0
    histogram = result["baselines"]["color_histogram"]
    assert result["photo_recall_at_10"] > histogram["photo_recall_at_10"]
    assert result["photo_recall_at_10"] > result["baselines"]["random_weights"]["photo_recall_at_10"]
    assert result["text_precision_at_10"] > histogram["text_precision_at_10"]
    assert len(result["per_category"]) >= 12


def test_eval_cli_prints_the_required_keys(small_eval) -> None:
    catalog, queries = small_eval
    args = ["eval", "--catalog", str(catalog), "--queries", str(queries), "--no-baselines", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert all(key in data for key in REQUIRED_KEYS)
    one_sided = CliRunner().invoke(app, ["eval", "--catalog", str(catalog)])
    assert one_sided.exit_code == 2


def test_colour_histogram_knows_colour_words_only() -> None:
    embedder = ColorHistogramEmbedder()
    red, blue, none = embedder.embed_texts(["a red mug", "blue chair", "chair"])
    assert float(red @ blue) < 0.5 and np.allclose(np.linalg.norm(none), 1.0)

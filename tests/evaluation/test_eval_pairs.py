"""`vitrine eval --pairs`: learning from pairs in the evaluation's own workspace, measured before and after,
each mechanism alone and both; without --pairs the figures stay as they were."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from catalogs import make_rows, write_csv
from pair_photos import look_photo, write_pairs
from typer.testing import CliRunner

from cli.main import app
from evaluation.evaluate import HEADLINE, open_eval_set, run_evaluation
from vision.model_store import ModelStore

LOOKS = list(range(30))
LEARNED_KEYS = ("before_learning", "with_customer_views", "with_adaptation", "learning")


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 40-product catalog, queries that are unseen photos of the products' real look, and pairs."""
    root = tmp_path_factory.mktemp("eval-pairs")
    (root / "catalog" / "acme").mkdir(parents=True)
    write_csv(root / "catalog" / "acme" / "catalog.csv", make_rows(40))
    queries = root / "queries"
    (queries / "photos").mkdir(parents=True)
    rows = []
    for row in LOOKS:
        for variant in (100, 101):
            name = f"photos/q{row:05d}-{variant}.jpg"
            (queries / name).write_bytes(look_photo(row, variant))
            rows.append([name, "acme", f"SKU-{row:05d}", ["earrings", "lamps", "mugs"][row % 3]])
    with (queries / "photos.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "vendor", "sku", "category"])
        writer.writerows(rows)
    (queries / "texts.csv").write_text("text,category\nearrings,earrings\na lamp,lamps\nmugs,mugs\n")
    pairs = write_pairs(root / "pairs", "acme", LOOKS, 6)
    # One product photographed more often than it has customer-view slots (16), its rows together
    # as a real export has them: later views replace earlier ones within one batch.
    crowded = write_pairs(root / "crowded", "acme", [LOOKS[0]], 40, first_variant=200)
    with pairs.open("a") as handle:
        for line in crowded.read_text().splitlines()[1:]:
            handle.write(f"../crowded/{line}\n")
    return root / "catalog", queries, pairs


@pytest.fixture
def models(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    home = tmp_path / "home"
    shutil.copytree(tiny[0], home / "models" / "test-tiny")
    monkeypatch.setenv("VITRINE_HOME", str(home))
    return ModelStore(home)


def test_eval_with_pairs_reports_before_each_mechanism_and_after(eval_data, models, tmp_path) -> None:
    catalog, queries, pairs = eval_data
    root = tmp_path / "eval"
    result = run_evaluation(open_eval_set(catalog, queries), root, "test-tiny", False, models, pairs=pairs)
    for key in (*HEADLINE, "photo_queries", "text_queries", "per_category", "photo_recall_curve", "model_id"):
        assert key in result
        for part in ("before_learning", "with_customer_views", "with_adaptation"):
            assert key in result[part]
    before = result["before_learning"]
    assert result["learning"]["promoted"] is True and result["learning"]["imported"]["imported"] == 220
    assert result["learning"]["views"].get("added", 0) > 0
    assert result["with_adaptation"]["photo_recall_at_1"] > before["photo_recall_at_1"] + 0.2
    assert result["with_customer_views"]["photo_recall_at_1"] > before["photo_recall_at_1"] + 0.2
    assert result["photo_recall_at_1"] > before["photo_recall_at_1"] + 0.2
    assert result["model_id"] == result["with_adaptation"]["model_id"] != before["model_id"]
    # The learned version lives in the evaluation's model store; the user's model is untouched.
    assert (root / "models" / result["learning"]["version"] / "manifest.json").is_file()
    assert (
        not models.pointer_path("test-tiny").exists() and models.resolve("test-tiny")[1].model_id == before["model_id"]
    )
    again = run_evaluation(open_eval_set(catalog, queries), root, "test-tiny", False, models)
    assert not set(LEARNED_KEYS) & set(again)  # without pairs: today's figures, the catalog as before
    assert again["photo_recall_at_1"] == before["photo_recall_at_1"]


def test_eval_command_with_pairs_prints_the_new_keys(eval_data, models) -> None:
    catalog, queries, pairs = eval_data
    args = ["eval", "--catalog", str(catalog), "--queries", str(queries), "--model", "test-tiny"]
    result = CliRunner().invoke(app, [*args, "--no-baselines", "--pairs", str(pairs), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert all(key in data for key in (*LEARNED_KEYS, *HEADLINE))
    assert all(key in data["before_learning"] for key in HEADLINE)
    missing = CliRunner().invoke(app, [*args, "--no-baselines", "--pairs", str(pairs.parent / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv" in missing.output

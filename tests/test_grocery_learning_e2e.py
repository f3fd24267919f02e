"""Learning from confirmed pairs helps `vitrine search` on real phone photos, end to end on the CLI.

The grocery set (`../shared/data/grocery-store`) is laid out by `prepare_grocery`, its 81-product catalog
ingested with the default model `vitrine-lite2`, and a fixed subset of products chosen: some of their train
photos become a small pairs CSV for `vitrine learn --pairs`, some of their validation photos (never paired)
are searched with `vitrine search PHOTO --json` before and after learning. The learned version must be
promoted, be what the default model now means, and rank the right products strictly better. `learn --pairs`
imports without customer views by default, so the gain measured is the learned adapter's alone.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from shared_data import GROCERY, require
from typer.testing import CliRunner

from cli.main import app
from evaluation.grocery import VENDOR, GrocerySet, prepare_grocery
from vision.embedder import open_embedder
from vision.model_store import DEFAULT_MODEL, chosen_model

runner = CliRunner()

PRODUCTS = 16  # products chosen, evenly spread over those with validation photos (sorted by sku)
TRAIN_PHOTOS = 15  # train photos of each chosen product made confirmed pairs (every product has at least 16)
VAL_PHOTOS = 2  # validation photos of each chosen product searched (every one that has any has at least 3)


@dataclass(frozen=True)
class Query:
    photo: Path
    sku: str


@pytest.fixture(scope="module")
def grocery() -> Path:
    return require(GROCERY)


@pytest.fixture(scope="module")
def lite2(grocery: Path, store) -> Path:  # type: ignore[no-untyped-def]
    """`vitrine-lite2` exported to ONNX once, in the session's home; the test copies it into its own home.

    `grocery` first: without the data the test is skipped before a minute is spent exporting."""
    directory, manifest = store.resolve(DEFAULT_MODEL, follow_active=False)
    assert manifest.name == DEFAULT_MODEL
    return directory


def _vitrine() -> str:
    found = shutil.which("vitrine", path=str(Path(sys.executable).parent))
    assert found, "the vitrine console script is not installed"
    return found


def _run_json(*args: str) -> dict:
    """Run the installed `vitrine` in a child process (environment: this test's home); its stdout as JSON."""
    out = subprocess.run([_vitrine(), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=900)
    assert out.returncode == 0, f"vitrine {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _subset(data: GrocerySet, folder: Path) -> tuple[list[str], Path, list[Query]]:
    """The chosen skus, a pairs CSV of their first train photos, and their first validation photos."""
    photos, pairs = _rows(data.queries / "photos.csv"), _rows(data.pairs)
    with_val = sorted({row["sku"] for row in photos})
    chosen = [with_val[i * len(with_val) // PRODUCTS] for i in range(PRODUCTS)]
    train: list[dict[str, str]] = []
    queries: list[Query] = []
    for sku in chosen:
        own_pairs = sorted((row for row in pairs if row["sku"] == sku), key=lambda row: row["photo"])
        own_photos = sorted((row for row in photos if row["sku"] == sku), key=lambda row: row["file"])
        assert len(own_pairs) >= TRAIN_PHOTOS and len(own_photos) >= VAL_PHOTOS, sku
        train += own_pairs[:TRAIN_PHOTOS]
        queries += [Query(Path(row["file"]), sku) for row in own_photos[:VAL_PHOTOS]]
    assert not {str(q.photo) for q in queries} & {row["photo"] for row in train}, "a searched photo is also a pair"
    small = folder / "pairs-subset.csv"
    with small.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["photo", "vendor", "sku"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(train)
    return chosen, small, queries


def _ranks(queries: list[Query], products: int) -> list[int]:
    """The rank of the right product in `vitrine search PHOTO --json` (every product returned) per query."""
    ranks = []
    for query in queries:
        result = runner.invoke(app, ["search", str(query.photo), "--k", str(products), "--json"])
        assert result.exit_code == 0, result.output
        skus = [hit["sku"] for hit in json.loads(result.stdout)]
        assert len(skus) == products and query.sku in skus, (query, skus)
        ranks.append(skus.index(query.sku) + 1)
    return ranks


def _mrr(ranks: list[int]) -> float:
    return sum(1.0 / r for r in ranks) / len(ranks)


def _top1(ranks: list[int]) -> int:
    return sum(r == 1 for r in ranks)


@pytest.mark.slow  # the default model's ONNX export (once per session), an 81-product ingest, learning, 64 searches
def test_learning_from_pairs_improves_vitrine_search_on_real_photos(
    grocery: Path, lite2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(lite2, home / "models" / DEFAULT_MODEL)
    monkeypatch.setenv("VITRINE_HOME", str(home))  # learning switches the default model here only
    monkeypatch.delenv("VITRINE_MODEL", raising=False)  # the default model, as a fresh install runs it
    monkeypatch.delenv("VITRINE_DATABASE_URL", raising=False)  # the database inside this home
    data = prepare_grocery(grocery, tmp_path / "grocery")

    ingest = _run_json("ingest", str(data.catalog / VENDOR / "catalog.csv"), "--vendor", VENDOR, "--json")
    assert ingest["accepted"] == 81 and ingest["rejected"] == 0, ingest
    parent_id = ingest["model_id"]
    assert parent_id.startswith(f"{DEFAULT_MODEL}@"), parent_id
    products = ingest["accepted"]

    chosen, pairs_csv, queries = _subset(data, tmp_path)
    before = _ranks(queries, products)

    outcome = _run_json("learn", "--pairs", str(pairs_csv), "--json")
    shown = json.dumps(outcome, indent=2)
    assert outcome["promoted"] is True, f"the learned version was not promoted:\n{shown}"
    assert outcome["imported"]["imported"] == PRODUCTS * TRAIN_PHOTOS, shown
    assert outcome["imported"]["rejected"] == 0 and outcome["imported"]["views"] == {}, shown
    version = f"{DEFAULT_MODEL}+pairs-1"
    assert outcome["version"] == outcome["active"] == version and outcome["parent_model_id"] == parent_id, shown
    learned_id = outcome["model_id"]
    assert learned_id.startswith(f"{version}@") and learned_id != parent_id, shown

    # `vitrine search --json` lists hits only, so which model it ran is read where it reads it: the default
    # name resolved through the active-version pointer, and that version's index beside the parent's.
    assert open_embedder(chosen_model(None), "onnx").manifest.model_id == learned_id
    doctor = _run_json("doctor", "--json")
    assert doctor["healthy"], doctor
    indexed = {m["model_id"]: m["vectors_in_index"] for m in doctor["models"]}
    assert indexed == {parent_id: products, learned_id: products}, indexed

    after = _ranks(queries, products)
    summary = (
        f"{len(queries)} validation photos of {len(chosen)} products, {PRODUCTS * TRAIN_PHOTOS} pairs learned "
        f"({outcome['pairs']['holdout']} held out: recall@1 {outcome['holdout']['before']['recall_at_1']:.3f} -> "
        f"{outcome['holdout']['after']['recall_at_1']:.3f}); vitrine search MRR {_mrr(before):.3f} -> "
        f"{_mrr(after):.3f}, top-1 {_top1(before)} -> {_top1(after)} of {len(queries)}"
    )
    print(f"\nproducts: {', '.join(chosen)}\nranks before: {before}\nranks after:  {after}\n{summary}")
    assert _mrr(after) > _mrr(before), summary
    assert _top1(after) > _top1(before), summary

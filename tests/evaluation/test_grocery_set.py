"""The grocery real-photo set laid out as any vendor's catalog, queries and operator-confirmed pairs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from shared_data import GROCERY, require

from demo.catalog import read_queries
from evaluation.grocery import prepare_grocery


@pytest.fixture(scope="module")
def grocery_set(tmp_path_factory: pytest.TempPathFactory):
    return prepare_grocery(require(GROCERY), tmp_path_factory.mktemp("grocery"))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_catalog_holds_one_shot_per_product_inside_its_folder(grocery_set) -> None:
    rows = _rows(grocery_set.catalog / "grocery" / "catalog.csv")
    assert len(rows) == 81 and len({r["sku"] for r in rows}) == 81
    for row in rows:
        assert (grocery_set.catalog / "grocery" / row["image"]).is_file()
    apples = [r for r in rows if r["category"] == "Apple"]
    assert len(apples) >= 5 and all(r["description"] for r in apples)


def test_validation_photos_are_the_queries_and_train_photos_the_pairs(grocery_set) -> None:
    photos, texts = read_queries(grocery_set.queries)
    assert len(photos) == 296 and all(p.file.is_file() and "/val/" in str(p.file) for p in photos)
    skus = {r["sku"] for r in _rows(grocery_set.catalog / "grocery" / "catalog.csv")}
    assert {p.sku for p in photos} <= skus
    assert {t.category for t in texts} >= {"Apple", "Milk"}
    pairs = _rows(grocery_set.pairs)
    assert len(pairs) == 2640 and list(pairs[0]) == ["photo", "vendor", "sku"]
    assert all("/train/" in p["photo"] for p in pairs) and {p["sku"] for p in pairs} <= skus
    # No photo is both a query and a training pair.
    assert not {str(p.file) for p in photos} & {p["photo"] for p in pairs}


def test_preparing_twice_changes_nothing(grocery_set, tmp_path: Path) -> None:
    again = prepare_grocery(require(GROCERY), grocery_set.catalog.parent)
    assert _rows(again.pairs) == _rows(grocery_set.pairs)
    with pytest.raises(FileNotFoundError, match="not the grocery data set"):
        prepare_grocery(tmp_path, tmp_path / "out")

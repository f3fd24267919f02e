"""The grocery evaluation set: real phone photos searched against one catalog shot per product.

`../shared/data/grocery-store` holds 81 products, each with one clean "iconic" catalog image and a
description, and real smartphone photos taken in stores (train and validation splits). This module
lays it out as `vitrine eval` and `vitrine pairs import` read any vendor's data:

- `catalog/grocery/catalog.csv` + `images/`: the 81 catalog shots (copied: ingest reads images only
  from inside the catalog's folder), titled by product, in their coarse class (Apple, Milk, ...);
- `queries/photos.csv`: the validation photos, each answered by its product; `queries/texts.csv`: the
  coarse class names as text queries, every product of the class a right answer;
- `pairs/train.csv`: the train split's photos as operator-confirmed pairs (`photo,vendor,sku`), what
  an operator would have confirmed while serving customers, for `vitrine learn` and `eval --pairs`.

The source's own test split is not in the shared folder on purpose, and nothing here tunes to it.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

VENDOR = "grocery"
DEFAULT_SOURCE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "grocery-store"


@dataclass(frozen=True)
class Product:
    class_id: int
    sku: str
    title: str
    coarse: str
    iconic: Path
    description: str


@dataclass(frozen=True)
class GrocerySet:
    catalog: Path
    queries: Path
    pairs: Path


def products(source: Path) -> list[Product]:
    """The 81 products of `classes.csv`, in class-id order."""
    found = []
    with (source / "classes.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 6 or not row[1].strip().isdigit():
                continue  # the header
            description = source / row[5].strip().lstrip("/")
            text = description.read_text(encoding="utf-8", errors="replace").strip() if description.is_file() else ""
            found.append(
                Product(
                    class_id=int(row[1]),
                    sku=row[0].strip(),
                    title=row[0].strip().replace("-", " ").replace("_", " "),
                    coarse=row[2].strip().replace("-", " "),
                    iconic=source / row[4].strip().lstrip("/"),
                    description=" ".join(text.split()),
                )
            )
    return found


def split(source: Path, name: str) -> list[tuple[Path, int]]:
    """(photo, fine class id) of each line of `train.txt` or `val.txt`."""
    rows = []
    for line in (source / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[1].isdigit():
            rows.append((source / parts[0], int(parts[1])))
    return rows


def prepare_grocery(source: Path, out: Path) -> GrocerySet:
    """Write (or refresh) the evaluation layout of the grocery data under `out`; cheap to call again."""
    if not (source / "classes.csv").is_file():
        raise FileNotFoundError(f"{source} is not the grocery data set (no classes.csv)")
    catalog, queries, pairs = out / "catalog", out / "queries", out / "pairs"
    by_id = {p.class_id: p for p in products(source)}
    images = catalog / VENDOR / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for product in by_id.values():
        target = images / f"{product.sku}{product.iconic.suffix.lower()}"
        if not target.is_file() or target.stat().st_size != product.iconic.stat().st_size:
            shutil.copyfile(product.iconic, target)
        # Prices are not part of the data set; one nominal price keeps the rows valid catalog rows.
        rows.append(
            [product.sku, product.title, "1.00", "EUR", f"images/{target.name}", product.coarse, product.description]
        )
    _write_csv(
        catalog / VENDOR / "catalog.csv",
        ["sku", "title", "price", "currency", "image", "category", "description"],
        rows,
    )
    photos = [[str(path.resolve()), VENDOR, by_id[c].sku, by_id[c].coarse] for path, c in split(source, "val")]
    queries.mkdir(parents=True, exist_ok=True)
    _write_csv(queries / "photos.csv", ["file", "vendor", "sku", "category"], photos)
    coarse = sorted({p.coarse for p in by_id.values()})
    _write_csv(queries / "texts.csv", ["text", "category"], [[c.lower(), c] for c in coarse])
    (queries / "queries.json").write_text(json.dumps({"source": str(source.resolve()), "split": "val"}) + "\n")
    pairs.mkdir(parents=True, exist_ok=True)
    train = [[str(path.resolve()), VENDOR, by_id[c].sku] for path, c in split(source, "train")]
    _write_csv(pairs / "train.csv", ["photo", "vendor", "sku"], train)
    return GrocerySet(catalog, queries, pairs / "train.csv")


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    partial.replace(path)

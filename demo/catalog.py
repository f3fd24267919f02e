"""Write a generated demo catalog (and customer-photo query sets) in the format `vitrine ingest` reads.

Layout of a catalog folder:

    DIR/demo.json                 what was generated: seed, product count, vendors
    DIR/<vendor>/catalog.csv      one vendor file (columns: see COLUMNS)
    DIR/<vendor>/images/<sku>.jpg clean product shots

One folder per vendor because `vitrine ingest` takes one vendor per file.

Layout of a query folder (customer photos of products that are in the catalog):

    QDIR/queries.json             seeds and counts
    QDIR/photos.csv               file,vendor,sku,category
    QDIR/photos/<n>.jpg
    QDIR/texts.csv                text,category
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demo.photo_simulator import customer_photo
from demo.products import PRODUCT_TYPES, VENDORS, ProductSpec, product_spec
from demo.render import render_shot_jpeg

COLUMNS = ["sku", "title", "price", "currency", "image", "category", "brand", "color", "in_stock", "description"]
MANIFEST = "demo.json"
MIN_PRODUCTS = 14  # one of each type


@dataclass(frozen=True)
class DemoCatalog:
    """A generated catalog on disk: where each vendor file is, and which products it holds."""

    root: Path
    seed: int
    products: int

    @property
    def vendor_files(self) -> dict[str, Path]:
        return {vendor: self.root / vendor / "catalog.csv" for vendor in VENDORS}

    def specs(self) -> list[ProductSpec]:
        return [product_spec(self.seed, i) for i in range(self.products)]

    @classmethod
    def open(cls, root: Path) -> DemoCatalog:
        """A catalog folder written by `write_demo_catalog`; a clear error for any other folder."""
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(
                f"{root} is not a demo catalog (no {MANIFEST}); write one with `vitrine demo catalog`"
            )
        data = json.loads(manifest.read_text())
        return cls(root.resolve(), int(data["seed"]), int(data["products"]))


def _workers(count: int) -> int:
    if count < 300:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def _parallel(function: Callable, items: list, workers: int) -> Iterator:  # type: ignore[type-arg]
    """`map` over processes when there is enough work; in order either way."""
    if workers <= 1:
        yield from map(function, items)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(function, items, chunksize=32)


def _shot(spec: ProductSpec) -> bytes:
    return render_shot_jpeg(spec)


def write_demo_catalog(
    out: Path, seed: int, products: int = 2000, progress: Callable[[int, int], None] | None = None
) -> DemoCatalog:
    """Generate `products` products from `seed` into `out`, spread over the vendors. Same seed, same bytes."""
    if products < MIN_PRODUCTS:
        raise ValueError(f"a demo catalog needs at least {MIN_PRODUCTS} products (one of each type), not {products}")
    out.mkdir(parents=True, exist_ok=True)
    specs = [product_spec(seed, i) for i in range(products)]
    rows: dict[str, list[dict[str, str]]] = {vendor: [] for vendor in VENDORS}
    for vendor in VENDORS:
        (out / vendor / "images").mkdir(parents=True, exist_ok=True)
    for done, (spec, jpeg) in enumerate(zip(specs, _parallel(_shot, specs, _workers(products)), strict=True), 1):
        image = f"images/{spec.sku}.jpg"
        (out / spec.vendor / image).write_bytes(jpeg)
        rows[spec.vendor].append(spec.row(image))
        if progress and (done % 100 == 0 or done == products):
            progress(done, products)
    for vendor, vendor_rows in rows.items():
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(vendor_rows)
        (out / vendor / "catalog.csv").write_text(text.getvalue(), encoding="utf-8")
    manifest = {
        "generator": "vitrine demo catalog",
        "seed": seed,
        "products": products,
        "vendors": {vendor: len(vendor_rows) for vendor, vendor_rows in rows.items()},
        "categories": sorted({t.category for t in PRODUCT_TYPES}),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return DemoCatalog(out.resolve(), seed, products)


# --- query sets ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoQuery:
    file: Path
    vendor: str
    sku: str
    category: str


@dataclass(frozen=True)
class TextQuery:
    text: str
    category: str


def _query_photo(job: tuple[ProductSpec, int]) -> bytes:
    spec, seed = job
    out = io.BytesIO()
    customer_photo(spec, seed).save(out, format="JPEG", quality=92)
    return out.getvalue()


def text_queries(seed: int, per_category: int = 6) -> list[TextQuery]:
    """Shopper-style text queries, per category: the bare category and attribute + noun phrases."""
    rng = np.random.default_rng([seed, 0x7E47])
    queries: list[TextQuery] = []
    colours = ["red", "blue", "black", "white", "green", "pink", "yellow", "brown", "grey", "purple"]
    for kind in PRODUCT_TYPES:
        phrases = [kind.category, f"{kind.name} for sale"]
        while len(phrases) < per_category:
            pick = int(rng.integers(0, 3))
            if pick == 0:
                phrase = f"{colours[int(rng.integers(0, len(colours)))]} {kind.name}"
            elif pick == 1:
                phrase = f"{kind.materials[int(rng.integers(0, len(kind.materials)))]} {kind.name}"
            else:
                phrase = f"{kind.shapes[int(rng.integers(0, len(kind.shapes)))]} {kind.name}"
            if phrase not in phrases:
                phrases.append(phrase)
        queries.extend(TextQuery(phrase, kind.category) for phrase in phrases[:per_category])
    return queries


def write_queries(
    catalog: DemoCatalog, out: Path, seed: int, photos: int = 500, progress: Callable[[int, int], None] | None = None
) -> list[PhotoQuery]:
    """Customer photos of `photos` catalog products (drawn with seed `seed`), and the text queries."""
    rng = np.random.default_rng([seed, 0x9E41])
    chosen = np.sort(rng.choice(catalog.products, size=min(photos, catalog.products), replace=False))
    specs = [product_spec(catalog.seed, int(i)) for i in chosen]
    jobs = [(spec, seed * 1_000_003 + int(i)) for spec, i in zip(specs, chosen, strict=True)]
    (out / "photos").mkdir(parents=True, exist_ok=True)
    queries = []
    for n, (spec, jpeg) in enumerate(zip(specs, _parallel(_query_photo, jobs, _workers(len(jobs))), strict=True)):
        path = out / "photos" / f"{n:05d}.jpg"
        path.write_bytes(jpeg)
        queries.append(PhotoQuery(path, spec.vendor, spec.sku, spec.category))
        if progress and ((n + 1) % 100 == 0 or n + 1 == len(jobs)):
            progress(n + 1, len(jobs))
    with (out / "photos.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "vendor", "sku", "category"])
        writer.writerows([f"photos/{q.file.name}", q.vendor, q.sku, q.category] for q in queries)
    with (out / "texts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "category"])
        writer.writerows([q.text, q.category] for q in text_queries(seed))
    (out / "queries.json").write_text(
        json.dumps({"catalog_seed": catalog.seed, "seed": seed, "photos": len(queries)}, indent=2) + "\n"
    )
    return queries


def read_queries(folder: Path) -> tuple[list[PhotoQuery], list[TextQuery]]:
    """The photo and text queries of a query folder (either file may be absent)."""
    photos: list[PhotoQuery] = []
    texts: list[TextQuery] = []
    if not (folder / "photos.csv").is_file() and not (folder / "texts.csv").is_file():
        raise FileNotFoundError(f"{folder} holds neither photos.csv nor texts.csv")
    if (folder / "photos.csv").is_file():
        with (folder / "photos.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                photos.append(PhotoQuery(folder / row["file"], row["vendor"], row["sku"], row.get("category", "")))
    if (folder / "texts.csv").is_file():
        with (folder / "texts.csv").open(newline="") as handle:
            texts = [TextQuery(row["text"], row["category"]) for row in csv.DictReader(handle)]
    return photos, texts

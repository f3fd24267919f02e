"""Builders of vendor catalogs for the ingest tests: photos on disk, rows in any format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HEADERS = ["sku", "title", "price", "currency", "image", "category", "brand", "in_stock"]


def product_photo(seed: int, size: int = 160) -> bytes:
    """A distinct little product shot: coloured shapes on a light background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(200, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        box = sorted(rng.integers(0, size, 2).tolist()), sorted(rng.integers(0, size, 2).tolist())
        draw.ellipse(
            (box[0][0], box[1][0], box[0][1] + 8, box[1][1] + 8), fill=tuple(int(c) for c in rng.integers(0, 200, 3))
        )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def make_rows(count: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {
            "sku": f"SKU-{i:05d}",
            "title": f"Product number {i}",
            "price": f"{10 + i % 90}.50",
            "currency": "EUR",
            "image": f"photos/p{i:05d}.jpg",
            "category": ["earrings", "lamps", "mugs"][i % 3],
            "brand": "Acme",
            "in_stock": "yes" if i % 4 else "no",
        }
        for i in range(start, start + count)
    ]


def write_photos(folder: Path, rows: list[dict[str, str]]) -> None:
    for row in rows:
        if "image" not in row:  # a vendor's own headers: photos written by the test itself
            continue
        path = folder / row["image"]
        if not path.exists() and row["image"].startswith("photos/p"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(product_photo(int(row["image"][8:13])))


def write_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",", bom: bool = False) -> Path:
    headers = list(dict.fromkeys(k for row in rows for k in row)) or HEADERS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=headers, delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode())
    write_photos(path.parent, rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    write_photos(path.parent, rows)
    return path


def write_parquet(path: Path, rows: list[dict[str, str]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    write_photos(path.parent, rows)
    return path

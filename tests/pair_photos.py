"""Customer photos for the learning tests: each product has a "real look" unlike its catalog shot.

A catalog row `n` shows `catalogs.product_photo(n)`; a customer's photo of that product is a jittered
view (crop, brightness, noise) of another picture, `product_photo(LOOK_OFFSET + n)`. Before learning,
such a photo finds its product only by chance; photos of one product resemble each other, so a map
learned from some of them carries the rest to their product.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from catalogs import product_photo
from PIL import Image, ImageEnhance

LOOK_OFFSET = 5000


def look_photo(row: int, variant: int) -> bytes:
    """Customer photo `variant` of catalog row `row`'s product."""
    rng = np.random.default_rng(row * 1000 + variant)
    image = Image.open(io.BytesIO(product_photo(LOOK_OFFSET + row, size=200))).convert("RGB")
    side = int(200 * rng.uniform(0.86, 1.0))
    left, top = (int(v) for v in rng.integers(0, 200 - side + 1, 2))
    image = image.crop((left, top, left + side, top + side)).resize((180, 180), Image.Resampling.BICUBIC)
    image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.88, 1.12)))
    noisy = np.asarray(image, np.float32) + rng.normal(0, 3.0, (180, 180, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def catalog_photo(row: int, variant: int) -> bytes:
    """The product's own catalog shot, as a customer photo (search finds it already)."""
    del variant
    return product_photo(row)


def write_pairs(
    folder: Path, vendor: str, rows: list[int], per_product: int, photo=look_photo, first_variant: int = 0
) -> Path:
    """`folder/pairs.csv` (photo,vendor,sku) with its photos beside it; returns the CSV's path."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        for variant in range(first_variant, first_variant + per_product):
            name = f"photos/r{row:05d}-v{variant:03d}.jpg"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(photo(row, variant))
            lines.append([name, vendor, f"SKU-{row:05d}"])
    path = folder / "pairs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["photo", "vendor", "sku"])
        writer.writerows(lines)
    return path

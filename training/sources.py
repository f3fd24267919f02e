"""The image-text data the default model learns from, all of it on this machine.

Three sources, each a list of `Item`s (an image to load, the texts that describe it, and the keys
that say which captions fit it):

- the generated demo catalog (`demo.products`): clean shots, simulated customer photos and
  shopper-style captions with their claims;
- the Flipkart sample (`../shared/data/flipkart-sample`): real product photos, titles, category paths;
- the grocery catalog (`../shared/data/grocery-store`): one studio shot per product with its
  description. Only the catalog shots are used: the customer photos of its train split are the
  operators' picks that `vitrine learn` learns from, and its validation photos are the measure.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from demo.products import ProductSpec

Loader = Callable[[], Image.Image]


@dataclass(frozen=True)
class Item:
    """One catalog image and what may be said about it.

    `captions` are (text, key) pairs: a caption fits every item of a batch whose `keys` hold its key, so
    "apple" is a right answer for all five apples, and a full title only for its own product.
    """

    source: str
    product: str  # unique within the source: photos of one product share it
    load: Loader
    captions: tuple[tuple[str, str], ...]
    keys: frozenset[str] = field(default_factory=frozenset)
    demo: tuple[int, int] | None = None  # (catalog seed, index) of a generated demo product; None: a real photo

    @property
    def real(self) -> bool:
        return self.demo is None


def _open(path: Path) -> Loader:
    def load() -> Image.Image:
        with Image.open(path) as image:
            image.draft("RGB", (640, 640))  # JPEG DCT scaling: the model sees 260 px anyway
            return image.convert("RGB")

    return load


_WORDS = re.compile(r"[^\w&' -]+")


def _clean(text: str, limit: int = 120) -> str:
    return " ".join(_WORDS.sub(" ", text).split())[:limit].strip().lower()


def flipkart_items(folder: Path) -> list[Item]:
    """Each sample row with a photo: its title, its brand + category leaf, and its category path parts."""
    table = folder / "flipkart_com-ecommerce_sample_1050.csv"
    items = []
    with table.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            photo = folder / "images" / row["image"]
            if not photo.is_file():
                continue
            try:
                path = json.loads(row["product_category_tree"])[0]
            except (ValueError, IndexError):
                path = ""
            parts = [_clean(p, 60) for p in path.split(">>")[:-1] if p.strip()]
            title = _clean(row["product_name"])
            key = f"flipkart:{row['pid']}"
            captions = [(title, key)]
            captions += [(part, f"flipkart-cat:{part}") for part in parts[-2:]]
            if parts and row.get("brand"):
                captions.append((f"{_clean(row['brand'], 40)} {parts[-1]}", key))
            keys = frozenset({key, *(f"flipkart-cat:{p}" for p in parts[-2:])})
            items.append(Item("flipkart", row["pid"], _open(photo), tuple(captions), keys))
    return items


def grocery_items(folder: Path) -> list[Item]:
    """The 81 catalog shots with their names, coarse classes and description sentences (no customer photos)."""
    items = []
    with (folder / "classes.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if not row or not row[1].strip().isdigit():
                continue  # the header
            name, coarse = row[0].replace("-", " ").replace("_", " "), row[2].replace("-", " ")
            iconic, description = folder / row[4].lstrip("/"), folder / row[5].lstrip("/")
            key, coarse_key = f"grocery:{row[1].strip()}", f"grocery-coarse:{coarse.lower()}"
            captions = [(_clean(name), key), (_clean(coarse), coarse_key), (_clean(f"{coarse} {name}"), key)]
            if description.is_file():
                first = description.read_text(encoding="utf-8", errors="replace").split(".")[0]
                captions.append((_clean(first), key))
            items.append(Item("grocery", row[1].strip(), _open(iconic), tuple(captions), frozenset({key, coarse_key})))
    return items


def demo_items(count: int, seed: int) -> list[Item]:
    """Generated demo products: the clean shot to load, captions drawn per product from its attributes."""
    from demo.products import product_spec
    from demo.render import render_shot
    from demo.train import caption

    items = []
    for index in range(count):
        spec = product_spec(seed, index)
        rng = np.random.default_rng([seed, index, 17])
        drawn = [caption(spec, rng) for _ in range(6)]
        # A caption's claims as one key: another product fits it only if it satisfies the same claims.
        captions = tuple((c.text, _claims_key({f: getattr(c, f) for f in _CLAIMS})) for c in drawn)
        load = lambda spec=spec: render_shot(spec)  # noqa: E731
        items.append(Item("demo", spec.sku, load, captions, _demo_keys(spec), demo=(seed, index)))
    return items


_CLAIMS = ("title", "kind", "colour", "material", "pattern", "shape", "accent")


def _claims_key(claims: dict[str, str | None]) -> str:
    return "demo:" + "|".join(f"{name}={claims[name]}" for name in _CLAIMS if claims.get(name))


def _demo_keys(spec: ProductSpec) -> frozenset[str]:
    """Every claim combination the product satisfies (what `demo.train.Caption.fits` would accept)."""
    keys = {_claims_key({"title": spec.title.lower()})}
    kind, pattern, material, shape, accent = spec.type, spec.pattern, spec.material, spec.shape, spec.accent
    for colour in (None, spec.colour, accent):
        for p in (None, pattern):
            for m in (None, material):
                for s in (None, shape):
                    for a in (None, accent):
                        claims = {"kind": kind, "colour": colour, "pattern": p, "material": m, "shape": s, "accent": a}
                        keys.add(_claims_key(claims))
    return frozenset(keys)

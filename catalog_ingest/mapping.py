"""Column mappings: a vendor's headers → Vitrine's catalog fields, written once as TOML.

[columns]                  # field = "their header", or a list: the first non-empty wins
sku = "pid"
price = ["discounted_price", "retail_price"]
[constants]                # a value for every row
currency = "INR"
[transforms]               # named clean-ups of one field
category = "category_path"
[images]
folder = "images"          # relative image paths are resolved inside this sub-folder
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from catalog_ingest.errors import CatalogError

REQUIRED_FIELDS = ("sku", "title", "price", "currency", "image")
OPTIONAL_FIELDS = ("category", "brand", "color", "in_stock", "url", "description", "images")
ALL_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS


def category_path(value: str) -> str:
    """'["Home >> Curtains >> Door Curtains >> X..."]' (a category tree in one string) → 'Home > Curtains'.

    Keeps the two broadest levels: the deeper ones are often the product's own name.
    """
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
            text = str(items[0]) if items else ""
        except (ValueError, IndexError):
            text = text.strip("[]\"' ")
    parts = [p.strip() for p in text.replace(">>", ">").split(">") if p.strip()]
    return " > ".join(parts[:2])


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "category_path": category_path,
    "lower": str.lower,
    "strip": str.strip,
}


@dataclass(frozen=True)
class ColumnMapping:
    """How to read one vendor's file. The identity mapping reads files that use Vitrine's own headers."""

    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    transforms: dict[str, str] = field(default_factory=dict)
    image_folder: str = ""

    @classmethod
    def load(cls, path: Path) -> ColumnMapping:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(f"Cannot read the column mapping {path}: {exc}") from None
        columns = {
            name: (source,) if isinstance(source, str) else tuple(source)
            for name, source in data.get("columns", {}).items()
        }
        mapping = cls(
            columns=columns,
            constants={k: str(v) for k, v in data.get("constants", {}).items()},
            transforms=dict(data.get("transforms", {})),
            image_folder=str(data.get("images", {}).get("folder", "")),
        )
        mapping.check()
        return mapping

    def check(self) -> None:
        unknown = sorted((set(self.columns) | set(self.constants) | set(self.transforms)) - set(ALL_FIELDS))
        if unknown:
            raise CatalogError(f"The mapping names unknown fields {unknown}; fields are {', '.join(ALL_FIELDS)}.")
        bad = sorted(t for t in self.transforms.values() if t not in TRANSFORMS)
        if bad:
            raise CatalogError(f"Unknown transforms {bad}; available: {', '.join(TRANSFORMS)}.")

    def sources(self, name: str) -> tuple[str, ...]:
        return self.columns.get(name, (name,))

    def check_headers(self, headers: list[str]) -> None:
        """Refuse a file that lacks a required column, naming what is missing and what is there."""
        present = set(headers)
        missing = [
            f"{name} (from {' or '.join(self.sources(name))})" if name in self.columns else name
            for name in REQUIRED_FIELDS
            if name not in self.constants and not present & set(self.sources(name))
        ]
        if missing:
            raise CatalogError(
                f"The catalog lacks required column(s): {', '.join(missing)}. Its columns are: "
                f"{', '.join(headers[:30])}{' ...' if len(headers) > 30 else ''}. "
                "Rename them or pass a column mapping (--mapping FILE)."
            )

    def apply(self, raw: dict[str, object]) -> dict[str, str]:
        """One raw record → canonical field values (strings, possibly empty)."""
        out: dict[str, str] = {}
        for name in ALL_FIELDS:
            if name in self.constants:
                out[name] = self.constants[name]
                continue
            value = ""
            for source in self.sources(name):
                candidate = raw.get(source)
                if candidate is not None and str(candidate).strip() != "":
                    value = str(candidate)
                    break
            if value and name in self.transforms:
                value = TRANSFORMS[self.transforms[name]](value)
            out[name] = value
        return out

"""Column mappings: a vendor's headers → Vitrine's catalog fields, written once as TOML.

[columns]                  # field = "their header", or a list: the first non-empty wins
sku = "pid"
price = ["discounted_price", "retail_price"]
images = ["image_2", "image_3"]   # extra images: every listed column counts, not just the first
[constants]                # a value for every row
currency = "INR"
[transforms]               # named clean-ups of one field
category = "category_path"
[images]
folder = "images"          # relative image paths are resolved inside this sub-folder
"""

from __future__ import annotations

import json
import re
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


_PLAIN_PRICE = re.compile(r"[^\d]{0,4}\d[\d.,]*(?:[eE][+-]?\d+)?[^\d]{0,4}")
_PRICE_IN_TEXT = re.compile(r"\bprice\s*:?\s*(?:rs\.?|inr|₹|\$|€|£|usd|eur|gbp)?\s*(\d[\d.,]*\d|\d)", re.IGNORECASE)


def price_in_text(value: str) -> str:
    """A price as it is, or the one a text states ("... Price: Rs. 299 ..."), or "" when it states none.

    For a last fallback column such as a description: some vendors' rows carry their price only there."""
    text = value.strip()
    if _PLAIN_PRICE.fullmatch(text):
        return text
    found = _PRICE_IN_TEXT.search(text)
    return found.group(1) if found else ""


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "category_path": category_path,
    "price_in_text": price_in_text,
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
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"Cannot read the column mapping {path}: {exc}") from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, name: str = "(text)") -> ColumnMapping:
        """A mapping from its TOML text: a file's, or one a vendor saved in the browser."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"Cannot read the column mapping {name}: {exc}") from None
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
            if name == "images":  # every extra-image column counts, not just the first non-empty
                value = "\n".join(ref for c in self._image_columns(raw) for ref in split_image_refs(str(raw[c])))
            else:
                value = self._first_filled(raw, name)
            if value and name in self.transforms:
                value = TRANSFORMS[self.transforms[name]](value)
            out[name] = value
        return out

    def _first_filled(self, raw: dict[str, object], name: str) -> str:
        for source in self.sources(name):
            candidate = raw.get(source)
            if candidate is not None and str(candidate).strip() != "":
                return str(candidate)
        return ""

    def _image_columns(self, raw: dict[str, object]) -> list[str]:
        """The columns holding extra images: the mapped ones, or else `images` and any numbered image
        column (`image_2`, `image3`, `Image 4`) a file with Vitrine's own headers may carry."""
        if "images" in self.columns:
            return [c for c in self.columns["images"] if raw.get(c) is not None]
        return [c for c in raw if raw[c] is not None and (c == "images" or _NUMBERED_IMAGE.fullmatch(c))]


_NUMBERED_IMAGE = re.compile(r"images?[ _-]?\d+", re.IGNORECASE)


def split_image_refs(text: str) -> list[str]:
    """One cell's image references: a JSON list, or references separated by `|` or new lines."""
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
            if isinstance(items, list):
                return [str(item).strip() for item in items if str(item).strip()]
        except ValueError:
            pass
    return [part.strip() for part in re.split(r"[|\n]", text) if part.strip()]

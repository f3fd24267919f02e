"""Per-row validation: canonical strings in, a clean `CatalogRow` or the reasons it was rejected out."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from catalog.money import PriceError, parse_price
from catalog_ingest.mapping import split_image_refs

MAX_TITLE = 300
MAX_SKU = 128
MAX_DESCRIPTION = 20_000
MAX_IMAGES = 16
_CURRENCY = re.compile(r"[A-Z]{3}")
#: Optional text fields and the most characters each may hold (as the products table declares them).
MAX_FIELD = {"category": 300, "brand": 200, "color": 100}
_TRUE = {"true", "yes", "y", "1", "in stock", "instock", "available", "t"}
_FALSE = {"false", "no", "n", "0", "out of stock", "outofstock", "unavailable", "sold out", "f"}


@dataclass(frozen=True)
class Rejection:
    """One reason a row was not ingested; a row may have several."""

    row: int | None
    sku: str
    field: str
    reason: str
    line: int | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        if data["line"] is None:
            del data["line"]
        return data


@dataclass(frozen=True)
class CatalogRow:
    row: int
    sku: str
    title: str
    price: Decimal
    currency: str
    images: tuple[str, ...]
    category: str = ""
    brand: str = ""
    color: str = ""
    in_stock: bool = True
    url: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def row_hash(self) -> str:
        """Content hash of everything but the row number: unchanged rows are skipped on re-ingest."""
        data = {k: v for k, v in asdict(self).items() if k != "row"}
        data["price"] = str(self.price)
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def validate(row: int, values: dict[str, str]) -> CatalogRow | list[Rejection]:
    sku = values.get("sku", "").strip()
    problems: list[tuple[str, str]] = []
    if not sku:
        problems.append(("sku", "missing"))
    elif len(sku) > MAX_SKU:
        problems.append(("sku", f"longer than {MAX_SKU} characters"))
    title = " ".join(values.get("title", "").split())
    if not title:
        problems.append(("title", "missing"))
    elif len(title) > MAX_TITLE:
        problems.append(("title", f"longer than {MAX_TITLE} characters ({len(title)})"))
    price = _price(values.get("price", ""), problems)
    currency = values.get("currency", "").strip().upper()
    if not _CURRENCY.fullmatch(currency):
        problems.append(("currency", f"{values.get('currency', '')!r} is not a 3-letter currency code (e.g. EUR, INR)"))
    images = _images(values.get("image", ""), values.get("images", ""))
    if not images:
        problems.append(("image", "missing"))
    elif len(images) > MAX_IMAGES:
        problems.append(("images", f"more than {MAX_IMAGES} images"))
    for name, limit in MAX_FIELD.items():
        length = len(values.get(name, "").strip())
        if length > limit:
            problems.append((name, f"longer than {limit} characters ({length})"))
    in_stock = _stock(values.get("in_stock", ""), problems)
    url = values.get("url", "").strip()
    if url and urlsplit(url).scheme.lower() not in ("http", "https"):
        problems.append(("url", "not an http(s) address"))
    if problems:
        return [Rejection(row, sku, name, reason) for name, reason in problems]
    assert price is not None
    return CatalogRow(
        row=row,
        sku=sku,
        title=title,
        price=price,
        currency=currency,
        images=images,
        category=values.get("category", "").strip(),
        brand=values.get("brand", "").strip(),
        color=values.get("color", "").strip(),
        in_stock=in_stock,
        url=url,
        description=values.get("description", "").strip()[:MAX_DESCRIPTION],
    )


def _price(text: str, problems: list[tuple[str, str]]) -> Decimal | None:
    """The row's price by the one price grammar (`catalog.money`); its refusal becomes the row's reason."""
    try:
        return parse_price(text)
    except PriceError as exc:
        problems.append(("price", str(exc)))
        return None


def _images(image: str, images: str) -> tuple[str, ...]:
    refs = [*split_image_refs(image), *split_image_refs(images)]
    return tuple(dict.fromkeys(refs))  # keep order, drop repeats


def _stock(text: str, problems: list[tuple[str, str]]) -> bool:
    value = text.strip().lower()
    if not value or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value.isdigit():
        return int(value) > 0  # a stock count
    problems.append(("in_stock", f"{text!r} is not yes/no, true/false or a count"))
    return True

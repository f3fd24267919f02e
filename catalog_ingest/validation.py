"""Per-row validation: canonical strings in, a clean `CatalogRow` or the reasons it was rejected out."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from catalog_ingest.mapping import split_image_refs

MAX_TITLE = 300
MAX_SKU = 128
MAX_DESCRIPTION = 20_000
MAX_IMAGES = 16
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_PRICE = Decimal("999999999999.99")  # what the products table holds (14 digits, 2 decimals)
#: Optional text fields and the most characters each may hold (as the products table declares them).
MAX_FIELD = {"category": 300, "brand": 200, "color": 100}
# A currency sign or code before or after; the number starts with a digit (so `Rs.1,299` is 1299).
_PRICE = re.compile(r"[^\d+\-]*?([+-]?\d[\d.,]*)([eE][+-]?\d+)?[^\d]*")
_NOT_FINITE = {"inf", "infinity", "nan"}
_NUMBER_FORMS = (  # (pattern, thousands separator, decimal point)
    (re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"), ",", "."),
    (re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"), "", "."),
    (re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?"), ".", ","),
    (re.compile(r"\d+,\d+"), "", ","),
)
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
    """A price as vendors write it: a currency sign or code around it (`€12,50`, `Rs. 1,299`,
    `12.50 EUR`), thousands separators either way (`1,299.00`, `1.299,00`), an exponent as Parquet
    floats print (`1.5e+2`). Anything else is refused, never read as some other number."""
    raw = text.strip()
    if not raw:
        problems.append(("price", "missing"))
        return None
    if raw.lower().lstrip("+-") in _NOT_FINITE:
        problems.append(("price", f"{raw!r} is not a finite number"))
        return None
    match = _PRICE.fullmatch(raw)
    if match is None:
        problems.append(("price", f"{raw!r} is not a number"))
        return None
    value = _decimal(match.group(1) + (match.group(2) or ""))
    if value is None:
        problems.append(("price", f"{raw!r} is not a number"))
        return None
    if not value.is_finite() or not math.isfinite(float(value)):
        problems.append(("price", f"{raw!r} is not a finite number"))
        return None
    if value < 0:
        problems.append(("price", f"{raw!r} is negative"))
        return None
    if value > MAX_PRICE:
        problems.append(("price", f"{raw!r} is above the largest price accepted ({MAX_PRICE:,})"))
        return None
    return value.quantize(Decimal("0.01"))


def _decimal(number: str) -> Decimal | None:
    """Decimal of a number in one of the ways prices are written, tried in this order: `1,299.00`
    (comma thousands; so a lone `1,299` is 1299), `12.50` or `1.5e2` (point decimal), `1.299,00`
    (point thousands), `12,50` (comma decimal). Any other arrangement of separators is refused."""
    sign = number[0] if number[0] in "+-" else ""
    body = number[len(sign) :]
    for pattern, thousands, point in _NUMBER_FORMS:
        if pattern.fullmatch(body):
            digits = body.replace(thousands, "") if thousands else body
            return Decimal(sign + digits.replace(point, "."))
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

"""Per-row validation: canonical strings in, a clean `CatalogRow` or the reasons it was rejected out."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

MAX_TITLE = 300
MAX_SKU = 128
MAX_DESCRIPTION = 20_000
MAX_IMAGES = 16
_CURRENCY = re.compile(r"[A-Z]{3}")
_PRICE = re.compile(r"[^\d.,\-]")
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
    raw = text.strip()
    if not raw:
        problems.append(("price", "missing"))
        return None
    cleaned = _PRICE.sub("", raw)
    if cleaned.count(",") and cleaned.count("."):
        cleaned = cleaned.replace(",", "")  # 1,299.00
    elif cleaned.count(",") == 1 and len(cleaned.split(",")[1]) != 3:
        cleaned = cleaned.replace(",", ".")  # 12,50
    else:
        cleaned = cleaned.replace(",", "")  # 1,299
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        problems.append(("price", f"{raw!r} is not a number"))
        return None
    if not value.is_finite() or not math.isfinite(float(value)):
        problems.append(("price", f"{raw!r} is not a finite number"))
        return None
    if value < 0:
        problems.append(("price", f"{raw!r} is negative"))
        return None
    return value.quantize(Decimal("0.01"))


def _images(image: str, images: str) -> tuple[str, ...]:
    refs: list[str] = []
    for text in (image, images):
        text = text.strip()
        if text.startswith("["):
            try:
                refs.extend(str(v) for v in json.loads(text))
                continue
            except ValueError:
                pass
        refs.extend(part for part in re.split(r"[|\n]", text))
    cleaned = [r.strip() for r in refs if r.strip()]
    return tuple(dict.fromkeys(cleaned))  # keep order, drop repeats


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

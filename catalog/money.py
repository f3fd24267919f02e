"""Prices as people write them, read one way everywhere: catalog rows, offers, budgets and forms.

A currency sign or code may stand around the number (`€12,50`, `Rs. 1,299`, `12.50 EUR`);
thousands separators go either way (`1,299.00`, `1.299,00`); an exponent is read as Parquet floats
print it (`1.5e+2`). Any other arrangement of separators is refused, never read as some other
number: `1,299` is 1299, not 1.30. Amounts are Decimal with two places, as the tables hold them.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

#: What the money columns hold (Numeric(14, 2)).
MAX_PRICE = Decimal("999999999999.99")
_CENTS = Decimal("0.01")
# A currency sign or code before or after; the number starts with a digit (so `Rs.1,299` is 1299).
_PRICE = re.compile(r"[^\d+\-]*?([+-]?\d[\d.,]*)([eE][+-]?\d+)?[^\d]*")
_NOT_FINITE = {"inf", "infinity", "nan"}
_NUMBER_FORMS = (  # (pattern, thousands separator, decimal point), tried in this order
    (re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"), ",", "."),
    (re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"), "", "."),
    (re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?"), ".", ","),
    (re.compile(r"\d+,\d+"), "", ","),
)


class PriceError(ValueError):
    """Text that is not a usable price; the message says what is wrong with it (`'abc' is not a number`)."""


def parse_price(text: str, *, positive: bool = False) -> Decimal:
    """The amount `text` states, rounded to cents; `positive` also refuses zero (an offer, a budget)."""
    raw = (text or "").strip()
    if not raw:
        raise PriceError("missing")
    if raw.lower().lstrip("+-") in _NOT_FINITE:
        raise PriceError(f"{raw!r} is not a finite number")
    match = _PRICE.fullmatch(raw)
    value = _decimal(match.group(1) + (match.group(2) or "")) if match else None
    if value is None:
        raise PriceError(f"{raw!r} is not a number")
    if not value.is_finite() or not math.isfinite(float(value)):
        raise PriceError(f"{raw!r} is not a finite number")
    if value < 0:
        raise PriceError(f"{raw!r} is negative")
    if value > MAX_PRICE:
        raise PriceError(f"{raw!r} is above the largest price accepted ({MAX_PRICE:,})")
    rounded = value.quantize(_CENTS)
    if positive and rounded == 0:
        raise PriceError(f"{raw!r} is zero")
    return rounded


def _decimal(number: str) -> Decimal | None:
    """Decimal of a number written in one of `_NUMBER_FORMS`, or None for any other arrangement."""
    sign = number[0] if number[0] in "+-" else ""
    body = number[len(sign) :]
    for pattern, thousands, point in _NUMBER_FORMS:
        if pattern.fullmatch(body):
            digits = body.replace(thousands, "") if thousands else body
            return Decimal(sign + digits.replace(point, "."))
    return None

"""Prices as people write them, read one way everywhere: catalog rows, offers, budgets and forms.

A currency sign or code may stand around the number (`€12,50`, `Rs. 1,299`, `12.50 EUR`);
thousands separators go either way (`1,299.00`, `1.299,00`); an exponent is read as Parquet floats
print it (`1.5e+2`). Any other arrangement of separators is refused, never read as some other
number: `1,299` is 1299, not 1.30, and `0,001` is 0.001 (a thousands group never follows a lone 0).

Money is one type in the whole app: a Decimal in the currency's minor unit (cents; whole yen), as
the Numeric(14, 2) columns hold it. An amount is rounded to that unit first and checked after, so
`0.001` EUR or `0.4` JPY is zero and never a payable price. `parse_price` reads text into it;
`check_amount` re-checks an amount already held (an offer's price) before money moves.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal

#: What the money columns hold (Numeric(14, 2)).
MAX_PRICE = Decimal("999999999999.99")
_CENTS = Decimal("0.01")
#: ISO 4217 currencies without a minor unit (amounts in whole units). The three-decimal ones (BHD,
#: KWD, ...) are held to the two places the columns keep, like every other currency.
_ZERO_DECIMAL = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
ZERO_DECIMAL_CURRENCIES = frozenset(_ZERO_DECIMAL.split())
# A currency sign or code before or after; the number starts with a digit (so `Rs.1,299` is 1299).
_PRICE = re.compile(r"[^\d+\-]*?([+-]?\d[\d.,]*)([eE][+-]?\d+)?[^\d]*")
_NOT_FINITE = {"inf", "infinity", "nan"}
_NUMBER_FORMS = (  # (pattern, thousands separator, decimal point), tried in this order
    (re.compile(r"[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?"), ",", "."),
    (re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"), "", "."),
    (re.compile(r"[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?"), ".", ","),
    (re.compile(r"\d+,\d+"), "", ","),
)


class PriceError(ValueError):
    """Text that is not a usable price; the message says what is wrong with it (`'abc' is not a number`)."""


def minor_unit(currency: str | None) -> Decimal:
    """The smallest amount of `currency`: 1 for JPY and the other zero-decimal currencies, else 0.01
    (also when the currency is not known, as for a customer's budget)."""
    return Decimal(1) if (currency or "").upper() in ZERO_DECIMAL_CURRENCIES else _CENTS


def round_money(amount: Decimal, currency: str | None = None) -> Decimal:
    """`amount` rounded to the currency's minor unit (half to even, whatever the thread's decimal context)."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_EVEN)


def check_amount(amount: Decimal, currency: str | None, *, positive: bool = True) -> Decimal:
    """An amount already held (an offer's price), checked again before money moves: finite, not
    negative, within the columns, in the currency's minor unit and, with `positive`, not zero."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise PriceError(f"{amount!r} is not a finite amount")
    if amount < 0:
        raise PriceError(f"{amount} is negative")
    if amount > MAX_PRICE:
        raise PriceError(f"{amount} is above the largest price accepted ({MAX_PRICE:,})")
    rounded = round_money(amount, currency)
    if rounded != amount:
        raise PriceError(f"{amount} is not a whole number of {currency or 'the currency'}'s smallest unit")
    if positive and rounded == 0:
        raise PriceError(f"{amount} is zero")
    return rounded


def parse_price(text: str, *, currency: str | None = None, positive: bool = False) -> Decimal:
    """The amount `text` states, rounded to the minor unit of `currency` (cents when it is None);
    `positive` refuses an amount that is zero after that rounding (an offer, a budget)."""
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
    rounded = round_money(value, currency)
    if positive and rounded == 0:
        raise PriceError(f"{raw!r} is zero once rounded to {minor_unit(currency)} {currency or ''}".rstrip())
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

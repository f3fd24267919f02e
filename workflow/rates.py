"""Exchange rates: how prices in one currency are compared with a budget in another.

Rates live in the database (`exchange_rates`), not in a file under the data folder, because an admin
edits them from the web (`/admin/rates`) and every app process, on every host sharing one
PostgreSQL, must see the same table at once; `vitrine rates import FILE.csv` writes the same rows.

Each rate is "units of this currency per one EUR" (the base), with its source and the date it holds
for. EUR itself is always 1. A currency without a row has no rate: its prices are never converted
or compared with a budget in another currency (`convert` returns None, the caller labels them).
"""

from __future__ import annotations

import csv
import io
import time
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pycountry
from sqlalchemy import Date, DateTime, Numeric, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from catalog.db import Base, Product
from catalog.money import round_money
from workflow import audit
from workflow.errors import Invalid
from workflow.models import now

BASE = "EUR"
MAX_RATE = Decimal("1000000")


class ExchangeRate(Base):
    """One currency's rate against the base (EUR): `per_base` units of it buy one EUR."""

    __tablename__ = "exchange_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    per_base: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    source: Mapped[str] = mapped_column(String(200), default="")
    as_of: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


@dataclass(frozen=True)
class RateRow:
    """A checked rate, as typed on the admin page or read from a CSV line."""

    currency: str
    per_base: Decimal
    as_of: date
    source: str = ""


def check_currency(text: str | None) -> str:
    """An ISO 4217 currency code in capitals (`eur` → `EUR`), or `Invalid`."""
    code = (text or "").strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii() or pycountry.currencies.get(alpha_3=code) is None:
        raise Invalid(f"{text!r} is not a currency code; use three letters like EUR, USD or INR.")
    return code


def check_rate(currency: str, rate: str, as_of: str, source: str = "") -> RateRow:
    """One rate from text (the admin form, a CSV line); `Invalid` names the field that is wrong."""
    code = check_currency(currency)
    if code == BASE:
        raise Invalid(f"{BASE} is the base currency: its rate is always 1.")
    try:
        value = Decimal((rate or "").strip().replace(",", "."))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0 or value > MAX_RATE:
        raise Invalid(
            f"The rate for {code} must be a positive number of {code} per 1 {BASE}, like 91.5 (not {rate!r})."
        )
    try:
        day = date.fromisoformat((as_of or "").strip())
    except ValueError:
        raise Invalid(f"The date of the {code} rate must be written like 2026-12-01 (not {as_of!r}).") from None
    if len(source) > 200:
        raise Invalid("Keep the source under 200 characters.")
    return RateRow(code, value.quantize(Decimal("0.00000001")), day, source.strip())


def save_rates(session: Session, rows: list[RateRow]) -> int:
    """Insert or replace each currency's rate (the caller commits); the number of rows written."""
    for row in rows:
        existing = session.get(ExchangeRate, row.currency)
        if existing is None:
            session.add(ExchangeRate(currency=row.currency, per_base=row.per_base, source=row.source, as_of=row.as_of))
        else:
            existing.per_base, existing.source, existing.as_of = row.per_base, row.source, row.as_of
            existing.updated_at = now()
    return len(rows)


def delete_rate(session: Session, currency: str) -> bool:
    row = session.get(ExchangeRate, check_currency(currency))
    if row is None:
        return False
    session.delete(row)
    return True


def read_csv(text: str) -> list[RateRow]:
    """Rates from CSV text with a header `currency,rate,as_of[,source]` (rate: units per 1 EUR);
    `Invalid` names the line that is wrong, and nothing is kept from a file with a bad line."""
    reader = csv.DictReader(io.StringIO(text))
    needed = {"currency", "rate", "as_of"}
    if not reader.fieldnames or not needed <= {f.strip() for f in reader.fieldnames}:
        raise Invalid("The rates file needs a header line: currency,rate,as_of (and optionally source).")
    rows = []
    for number, line in enumerate(reader, start=2):
        line = {(k or "").strip(): (v or "") for k, v in line.items()}
        try:
            rows.append(check_rate(line["currency"], line["rate"], line["as_of"], line.get("source", "")))
        except Invalid as exc:
            raise Invalid(f"Line {number}: {exc.message}") from None
    return rows


@dataclass(frozen=True)
class RateTable:
    """The rates at one moment, to convert many prices without a query each."""

    per_base: dict[str, Decimal]
    as_of: dict[str, date]

    def has(self, currency: str) -> bool:
        return currency.upper() in self.per_base

    def convert(self, amount: Decimal, source: str, target: str) -> Decimal | None:
        """`amount` in `source` expressed in `target`, rounded to its minor unit; None when either
        currency has no rate (never compared as if it were the same money)."""
        source, target = source.upper(), target.upper()
        if source == target:
            return amount
        if source not in self.per_base or target not in self.per_base:
            return None
        return round_money(amount / self.per_base[source] * self.per_base[target], target)

    def oldest(self, *currencies: str) -> date | None:
        """The oldest date among the rates a conversion between `currencies` used (None: the base only)."""
        days = [self.as_of[c.upper()] for c in currencies if c.upper() in self.as_of]
        return min(days) if days else None


def load_table(session: Session) -> RateTable:
    rows = session.scalars(select(ExchangeRate)).all()
    per_base = {BASE: Decimal(1), **{r.currency: Decimal(r.per_base) for r in rows}}
    return RateTable(per_base, {r.currency: r.as_of for r in rows})


def all_rates(session: Session) -> list[ExchangeRate]:
    return list(session.scalars(select(ExchangeRate).order_by(ExchangeRate.currency)))


def set_rates(sessions: sessionmaker, rows: list[RateRow], who: str) -> int:
    """Save checked rates in one transaction, audited (the admin page, `vitrine rates import`)."""
    with sessions() as session:
        count = save_rates(session, rows)
        audit.record(session, who, "rates.saved", None, currencies=[r.currency for r in rows])
        session.commit()
    return count


def remove_rate(sessions: sessionmaker, currency: str, who: str) -> bool:
    with sessions() as session:
        removed = delete_rate(session, currency)
        if removed:
            audit.record(session, who, "rates.removed", None, currency=currency.upper())
        session.commit()
    return removed


def rates_view(sessions: sessionmaker) -> list[dict]:
    """The rates table as the admin page shows it."""
    with sessions() as session:
        return [
            {"currency": r.currency, "per_base": str(r.per_base.normalize()), "source": r.source, "as_of": r.as_of}
            for r in all_rates(session)
        ]


def default_currency(session: Session) -> str:
    """The catalog's most common currency (the budget's default), or EUR for an empty catalog."""
    found = session.execute(
        select(Product.currency, func.count()).group_by(Product.currency).order_by(func.count().desc()).limit(1)
    ).first()
    return found[0] if found else BASE


def budget_check(
    table: RateTable, price: Decimal | str, currency: str, budget: Decimal | None, budget_currency: str | None
) -> dict:
    """How a price stands against a budget: `state` is `within`, `over`, `no_rate` (its currency, or
    the budget's, has no rate: never compared) or None (no budget); `converted` is the price in the
    budget's currency when it had to be converted, with the rates' date."""
    if budget is None:
        return {"budget_state": None, "converted": None}
    target = budget_currency or currency  # a budget from before currencies: taken as the price's own
    amount = table.convert(Decimal(str(price)), currency, target)
    if amount is None:
        return {"budget_state": "no_rate", "converted": None}
    converted = None
    if currency.upper() != target.upper():
        day = table.oldest(currency, target)
        converted = {"amount": str(amount), "currency": target, "as_of": day.isoformat() if day else None}
    return {"budget_state": "within" if amount <= budget else "over", "converted": converted}


#: How long the budget's currency choices are reused: finding them scans the catalog's currencies,
#: which a home page view should not pay for every time (a new currency shows within a minute).
CHOICES_TTL_S = 60.0
_choices: weakref.WeakKeyDictionary[sessionmaker, tuple[float, tuple[list[str], str]]] = weakref.WeakKeyDictionary()


def currency_choices(sessions: sessionmaker) -> tuple[list[str], str]:
    """The budget's currency choices (the catalog's currencies, those with a rate, EUR) and the
    default (the catalog's most common), kept for `CHOICES_TTL_S` per database."""
    cached = _choices.get(sessions)
    if cached is not None and time.monotonic() - cached[0] < CHOICES_TTL_S:
        return cached[1]
    found = _currency_choices(sessions)
    _choices[sessions] = (time.monotonic(), found)
    return found


def _currency_choices(sessions: sessionmaker) -> tuple[list[str], str]:
    with sessions() as session:
        catalog = set(session.scalars(select(Product.currency).distinct()))
        rated = set(session.scalars(select(ExchangeRate.currency)))
        default = default_currency(session)
    return sorted(catalog | rated | {BASE}), default

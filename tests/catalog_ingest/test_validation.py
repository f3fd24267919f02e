"""Row validation on its own: how prices are read and which texts are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog_ingest.validation import CatalogRow, validate

GOOD = {"sku": "A1", "title": "Lamp", "currency": "EUR", "image": "a.jpg"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("17.50", "17.50"),
        ("1,299.00", "1299.00"),
        ("1.299,00", "1299.00"),
        ("1,299", "1299.00"),  # a lone comma before three digits: thousands
        ("1.299", "1.30"),  # a lone point: decimal
        ("12,50", "12.50"),
        ("1e3", "1000.00"),  # Parquet floats print this way
        ("1.5e+2", "150.00"),
        ("€12,50", "12.50"),
        ("Rs. 1,299", "1299.00"),
        ("Rs.1,299", "1299.00"),
        ("12.50 EUR", "12.50"),
        ("$1,234,567.89", "1234567.89"),
        ("1.299.000", "1299000.00"),
        ("0", "0.00"),
    ],
)
def test_prices_as_vendors_write_them(text: str, value: str):
    row = validate(1, {**GOOD, "price": text})
    assert isinstance(row, CatalogRow), row
    assert row.price == Decimal(value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "missing"),
        ("twelve", "not a number"),
        ("12.5.3", "not a number"),
        ("3,5,7", "not a number"),
        ("1,2.3", "not a number"),
        ("12 345", "not a number"),
        ("inf", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("NaN", "not a finite number"),
        ("1e400", "not a finite number"),
        ("-5", "negative"),
        ("1e+16", "above the largest price"),
    ],
)
def test_prices_that_are_refused_rather_than_misread(text: str, words: str):
    problems = validate(1, {**GOOD, "price": text})
    assert isinstance(problems, list)
    assert [p.field for p in problems] == ["price"] and words in problems[0].reason, problems


def test_text_fields_are_held_to_what_the_database_stores():
    problems = validate(1, {**GOOD, "price": "1", "category": "c" * 301, "color": "r" * 101})
    assert isinstance(problems, list) and {p.field for p in problems} == {"category", "color"}
    assert isinstance(validate(1, {**GOOD, "price": "1", "category": "c" * 300, "color": "r" * 100}), CatalogRow)

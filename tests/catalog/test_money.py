"""One price grammar for every place money is typed: a catalog row, an offer, a budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.money import PriceError, parse_price
from catalog_ingest.validation import validate
from workflow.errors import Invalid
from workflow.offers_service import _price as offer_price
from workflow.requests_service import check_wishes


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1,299", "1299.00"),
        ("1.299,00", "1299.00"),
        ("€12,50", "12.50"),
        ("Rs. 1,299", "1299.00"),
        ("1.5e+2", "150.00"),
    ],
)
def test_every_caller_reads_the_same_amount(text: str, amount: str) -> None:
    expected = Decimal(amount)
    assert parse_price(text) == expected
    row = validate(1, {"sku": "A", "title": "Mug", "price": text, "currency": "EUR", "image": "a.jpg"})
    assert not isinstance(row, list) and row.price == expected
    assert offer_price(text) == expected  # an offer typed "1,299" is 1299.00, not 1.30
    assert check_wishes("a@b.co", "", text).budget == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "missing"), ("abc", "not a number"), ("1,29,9", "not a number"), ("nan", "finite"), ("-3", "negative")],
)
def test_refusals_say_why(text: str, words: str) -> None:
    with pytest.raises(PriceError, match=words):
        parse_price(text)


def test_zero_is_a_catalog_price_but_not_an_offer_or_a_budget() -> None:
    assert parse_price("0") == Decimal("0.00")
    with pytest.raises(PriceError, match="zero"):
        parse_price("0.001", positive=True)
    with pytest.raises(Invalid, match="positive price"):
        offer_price("0")
    with pytest.raises(Invalid, match="positive"):
        check_wishes("a@b.co", "", "0")

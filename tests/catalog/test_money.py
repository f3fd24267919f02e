"""One price grammar for every place money is typed: a catalog row, an offer, a budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.money import PriceError, check_amount, parse_price
from catalog_ingest.validation import validate
from workflow.errors import Invalid
from workflow.offers_service import _price as offer_price
from workflow.requests_service import check_wishes
from workflow.workbench import parse_refinement


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


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [("1,299", "JPY", "1299"), ("1.5", "JPY", "2"), ("12.345", "EUR", "12.34"), ("0,5", "EUR", "0.50")],
)
def test_amounts_are_rounded_to_the_currency_minor_unit(text: str, currency: str, amount: str) -> None:
    assert parse_price(text, currency=currency) == Decimal(amount)
    assert offer_price(text, currency) == Decimal(amount)


@pytest.mark.parametrize(("text", "currency"), [("0.001", None), ("0,001", "EUR"), ("0.004", "EUR"), ("0.4", "JPY")])
def test_zero_is_judged_after_rounding_to_the_minor_unit(text: str, currency: str | None) -> None:
    """`0.001` is a positive number but no positive price: 0.00 once rounded, so no offer or budget."""
    with pytest.raises(PriceError, match="zero"):
        parse_price(text, currency=currency, positive=True)
    with pytest.raises(Invalid, match="zero"):
        offer_price(text, currency)


def test_a_lone_leading_zero_is_never_a_thousands_group() -> None:
    assert parse_price("0,001") == Decimal("0.00")  # 0.001 written with a decimal comma, not 1.00
    with pytest.raises(PriceError, match="not a number"):
        parse_price("0.001,5")


def test_amounts_already_held_are_checked_again_before_money_moves() -> None:
    assert check_amount(Decimal("1299.00"), "JPY") == Decimal("1299")
    assert check_amount(Decimal("0.00"), "EUR", positive=False) == 0
    for amount, currency, words in (
        (Decimal("0.00"), "EUR", "zero"),
        (Decimal("0.40"), "JPY", "smallest unit"),
        (Decimal("-1"), "EUR", "negative"),
        (Decimal("NaN"), "EUR", "finite"),
    ):
        with pytest.raises(PriceError, match=words):
            check_amount(amount, currency)


def test_the_workbench_price_filters_read_prices_like_offers() -> None:
    refinement = parse_refinement({"min_price": "1,299", "max_price": "2.000,50"})
    assert (refinement.min_price, refinement.max_price) == (1299.0, 2000.5)
    with pytest.raises(Invalid, match="Lowest price"):
        parse_refinement({"min_price": "cheap"})

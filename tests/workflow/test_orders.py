"""Orders without HTTP: the delivery choice is checked before money moves, kept with the payment's
intent (so an accept the provider never answered still becomes an order with its address), numbered
when paid, shipped with carrier and tracking; vendors see only their own orders. And the money side:
exchange rates, conversion, and budgets that never compare different currencies without a rate."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from decimal import Decimal

import pytest
from catalogs import product_photo
from concierge import NoMail, open_concierge
from delivery_support import ADDRESS, DELIVERY, SHIPMENT
from sqlalchemy import select, update

from catalog.db import Product, Vendor
from vision.embedder import open_embedder
from workflow import offers_service, orders, payment_saga, rates, requests_service, vendor_orders
from workflow.errors import Invalid, PaymentFailed
from workflow.intake import submit_request, within_budget
from workflow.models import CustomerRequest, Payment
from workflow.orders import DeliveryInvalid, Order, check_delivery
from workflow.payments import APPROVED, DECLINED, TestPaymentProvider
from workflow.views import customer_view


@pytest.fixture(scope="module")
def concierge(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    concierge = open_concierge(tmp_path_factory.mktemp("orders"), open_embedder("test-tiny", "onnx", store))
    yield concierge
    concierge.close()


def _offered(concierge, row: int, vendor: str = "acme") -> tuple[int, str, int]:  # type: ignore[no-untyped-def]
    """A request for product `row` with one offer of it: (request id, token, offer id)."""
    request_id = concierge.request(product_photo(row))
    concierge.claim(request_id)
    [offer_id] = concierge.send(request_id, [concierge.product(vendor, f"SKU-{row:05d}")])
    return request_id, concierge.token_of(request_id), offer_id


def _accept(concierge, provider, token: str, offer_id: int, key: str, card: str = APPROVED, delivery=DELIVERY):  # type: ignore[no-untyped-def]
    return offers_service.accept_offer(
        concierge.sessions,
        provider,
        token,
        offer_id,
        card,
        key,
        delivery=delivery,
        secret=concierge.settings.secret_key,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "  "}, "delivery.name"),
        ({"line1": ""}, "delivery.line1"),
        ({"city": ""}, "delivery.city"),
        ({"postcode": ""}, "delivery.postcode"),
        ({"country": "XX"}, "delivery.country"),
        ({"country": "Germany"}, "delivery.country"),
        ({"phone": ""}, "delivery.phone"),
        ({"phone": "12"}, "delivery.phone"),
        ({"phone": "not a number"}, "delivery.phone"),
        ({"kind": "pickup"}, "delivery.kind"),
        ({"kind": "drone"}, "delivery.kind"),
        ({"line1": "x" * 201}, "delivery.line1"),
    ],
)
def test_a_bad_delivery_field_is_refused_by_name(change: dict, field: str) -> None:
    with pytest.raises(DeliveryInvalid) as refused:
        check_delivery({**ADDRESS, **change})
    assert refused.value.field == field and refused.value.message


def test_a_delivery_is_cleaned_and_its_phone_kept_in_e164() -> None:
    delivery = check_delivery({**ADDRESS, "name": "  Ada Lovelace ", "country": "de"})
    assert (delivery.name, delivery.country, delivery.phone, delivery.kind) == (
        "Ada Lovelace",
        "DE",
        "+4930901820",
        "ship",
    )
    indian = check_delivery({**ADDRESS, "country": "IN", "phone": "+91 98765 43210", "postcode": "560001"})
    assert indian.phone == "+919876543210"
    with pytest.raises(DeliveryInvalid) as missing:
        check_delivery(None)
    assert missing.value.field == "delivery"


def test_an_accept_keeps_the_address_and_numbers_the_order_when_paid(concierge) -> None:
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(concierge, 3)
    _accept(concierge, provider, token, offer_id, "order-1")
    with concierge.sessions() as session:
        order = orders.order_of(session, request_id)
        assert re.fullmatch(r"V-\d{4}-\d{6}", order.number) and order.number.endswith(f"{order.id:06d}")
        assert (order.name, order.line1, order.city, order.postcode, order.country, order.phone) == (
            "Ada Lovelace",
            "Unter den Linden 1",
            "Berlin",
            "10117",
            "DE",
            "+4930901820",
        )
        view = customer_view(session, session.get(CustomerRequest, request_id), token)
    assert view["order"]["number"] == order.number and view["order"]["tracking"] is None
    assert view["order"]["delivery"]["country_name"] == "Germany"


def test_an_accept_without_a_delivery_charges_nothing(concierge) -> None:
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(concierge, 4)
    with pytest.raises(DeliveryInvalid) as refused:
        _accept(concierge, provider, token, offer_id, "order-none", delivery=None)
    assert refused.value.field == "delivery"
    assert provider.calls == []
    with concierge.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "offers_sent"
        assert session.scalar(select(Order).where(Order.request_id == request_id)) is None


def test_a_declined_card_leaves_no_order(concierge) -> None:
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(concierge, 5)
    with pytest.raises(PaymentFailed):
        _accept(concierge, provider, token, offer_id, "order-declined", card=DECLINED)
    with concierge.sessions() as session:
        assert orders.order_of(session, request_id) is None  # the intent's row stays, without a number
        assert session.scalar(select(Order.number).where(Order.request_id == request_id)) is None
    _accept(concierge, provider, token, offer_id, "order-second-card")  # another card: now an order
    with concierge.sessions() as session:
        assert orders.order_of(session, request_id).number is not None


class Crash(BaseException):
    """The process dying mid-call (not an Exception: nothing in the app catches it)."""


def test_a_crash_after_the_hold_still_becomes_the_order_with_its_address(concierge) -> None:
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(concierge, 6)

    def crash() -> None:
        raise Crash

    provider.meanwhile("authorise", crash)  # the card is held, then the process dies before recording it
    with pytest.raises(Crash):
        _accept(concierge, provider, token, offer_id, "order-crash")
    with concierge.sessions() as session:
        pending = session.scalar(select(Payment).where(Payment.request_id == request_id))
        assert pending.status == "pending"
        kept = session.scalar(select(Order).where(Order.payment_id == pending.id))
        assert kept.number is None and kept.line1 == "Unter den Linden 1"
    payment_saga.reconcile(concierge.sessions, provider, grace_s=0)
    with concierge.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "paid"
        order = orders.order_of(session, request_id)
        assert order.number is not None and order.city == "Berlin"
    assert [op for op, _ in provider.calls].count("authorise") == 1  # charged once


def test_fulfilment_needs_carrier_and_tracking_and_the_vendor_sees_only_its_orders(concierge) -> None:
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(concierge, 7)
    _accept(concierge, provider, token, offer_id, "order-ship")
    for missing in ({"carrier": "", "tracking": "X1"}, {"carrier": "DHL", "tracking": "  "}):
        with pytest.raises(Invalid):
            offers_service.fulfil(concierge.sessions, provider, request_id, concierge.alice, NoMail(), **missing)
    assert "capture" not in [op for op, _ in provider.calls]  # refused before any money moved
    offers_service.fulfil(concierge.sessions, provider, request_id, concierge.alice, NoMail(), **SHIPMENT)
    with concierge.sessions() as session:
        shipped = orders.order_dict(orders.order_of(session, request_id))
        acme = session.scalar(select(Vendor.id).where(Vendor.name == "acme"))
        globex = session.scalar(select(Vendor.id).where(Vendor.name == "globex"))
    acme_orders = vendor_orders.vendor_order_rows(concierge.sessions, acme)
    globex_orders = vendor_orders.vendor_order_rows(concierge.sessions, globex)
    assert shipped["tracking"]["carrier"] == "DHL" and shipped["tracking"]["number"] == SHIPMENT["tracking"]
    assert shipped["number"] in [o["number"] for o in acme_orders]
    assert all(o["delivery"]["city"] == "Berlin" for o in acme_orders)
    assert shipped["number"] not in [o["number"] for o in globex_orders]


@pytest.mark.parametrize("product_id", [0, -5, 2**63, 12565248294908923478016])
def test_an_offer_of_a_number_that_is_no_product_id_is_refused_clearly(concierge, product_id: int) -> None:
    request_id = concierge.request(product_photo(9))
    concierge.claim(request_id)
    with pytest.raises(Invalid, match="no longer in the catalog"):  # not an OverflowError from the driver
        concierge.send(request_id, [product_id])


def test_a_globex_order_is_listed_for_globex_only(concierge) -> None:
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(concierge, 45, vendor="globex")
    _accept(concierge, provider, token, offer_id, "order-globex")
    with concierge.sessions() as session:
        number = orders.order_of(session, request_id).number
        ids = dict(session.execute(select(Vendor.name, Vendor.id)).all())
    assert [o["number"] for o in vendor_orders.vendor_order_rows(concierge.sessions, ids["globex"])] == [number]
    assert number not in [o["number"] for o in vendor_orders.vendor_order_rows(concierge.sessions, ids["acme"])]


# --- rates and budgets -------------------------------------------------------------------------


def test_rates_are_checked_and_read_from_csv() -> None:
    row = rates.check_rate("inr", "91,50", "2026-12-01", "ECB")
    assert (row.currency, row.per_base, row.as_of) == ("INR", Decimal("91.50000000"), date(2026, 12, 1))
    for bad in (
        ("EUR", "1", "2026-12-01"),
        ("ABC", "1", "2026-12-01"),
        ("INR", "-3", "2026-12-01"),
        ("INR", "x", "2026-12-01"),
    ):
        with pytest.raises(Invalid):
            rates.check_rate(*bad)
    with pytest.raises(Invalid, match="date"):
        rates.check_rate("INR", "91", "1 Dec")
    assert [r.currency for r in rates.read_csv("currency,rate,as_of\nUSD,1.05,2026-12-01\nINR,91,2026-12-01\n")] == [
        "USD",
        "INR",
    ]
    with pytest.raises(Invalid, match="Line 3"):
        rates.read_csv("currency,rate,as_of\nUSD,1.05,2026-12-01\nINR,,2026-12-01\n")
    with pytest.raises(Invalid, match="header"):
        rates.read_csv("USD;1.05\n")


def test_a_price_is_compared_with_a_budget_only_through_a_rate() -> None:
    table = rates.RateTable({"EUR": Decimal(1), "INR": Decimal(90)}, {"INR": date(2026, 12, 1)})
    assert table.convert(Decimal("9000"), "INR", "EUR") == Decimal("100.00")
    assert table.convert(Decimal("10"), "USD", "EUR") is None  # no USD rate: never the same money
    within = rates.budget_check(table, "1800", "INR", Decimal("20"), "EUR")
    assert within == {
        "budget_state": "within",
        "converted": {"amount": "20.00", "currency": "EUR", "as_of": "2026-12-01"},
    }
    assert rates.budget_check(table, "1801", "INR", Decimal("20"), "EUR")["budget_state"] == "over"
    assert rates.budget_check(table, "5", "USD", Decimal("20"), "EUR")["budget_state"] == "no_rate"
    assert rates.budget_check(table, "219", "EUR", Decimal("200"), "EUR") == {"budget_state": "over", "converted": None}
    assert rates.budget_check(table, "5", "USD", None, None)["budget_state"] is None


def test_a_budget_with_a_currency_filters_the_instant_matches(concierge) -> None:
    """Budget 30 EUR: products over it leave the matches; one priced in INR converts (within), one
    in a currency without a rate stays, labelled, instead of being compared as if it were euros."""
    with concierge.sessions() as session:
        rates.save_rates(session, [rates.check_rate("INR", "90", "2026-12-01", "test")])
        session.execute(update(Product).where(Product.sku == "SKU-00011").values(currency="INR", price=Decimal("1800")))
        session.execute(update(Product).where(Product.sku == "SKU-00012").values(currency="XYZ", price=Decimal("500")))
        session.commit()
    hits = concierge.hits(product_photo(11), k=60)
    assert any(h.currency == "EUR" and Decimal(h.price) > 30 for h in hits)  # there is something to leave out
    kept = within_budget(concierge.sessions, hits, Decimal("30"), "EUR", 60)
    assert [h for h in kept if h.currency == "EUR" and Decimal(h.price) > 30] == []
    assert {"SKU-00011", "SKU-00012"} <= {h.sku for h in kept}  # 1800 INR = 20 EUR; XYZ: no rate, kept apart

    token = asyncio.run(
        submit_request(
            concierge.settings,
            concierge.sessions,
            concierge.search,
            NoMail(),
            "/r/{token}",
            product_photo(11),
            "c@d.ee",
            "",
            "30",
            "EUR",
        )
    )
    with concierge.sessions() as session:
        request = requests_service.load_by_token(session, token)
        assert (request.budget, request.budget_currency) == (Decimal("30.00"), "EUR")
        view = customer_view(session, request, token)
    matches = view["instant_matches"]
    assert matches and all(m["budget_state"] in ("within", "no_rate") for m in matches)
    [inr] = [m for m in matches if m["currency"] == "INR"]
    assert inr["converted"] == {"amount": "20.00", "currency": "EUR", "as_of": "2026-12-01"}
    with pytest.raises(Invalid, match="currency"):
        asyncio.run(
            submit_request(
                concierge.settings,
                concierge.sessions,
                concierge.search,
                NoMail(),
                "/r/{token}",
                product_photo(11),
                "c@d.ee",
                "",
                "30",
                "euros",
            )
        )


def test_rates_are_imported_and_listed_from_the_command_line(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("VITRINE_HOME", str(tmp_path / "home"))
    good = tmp_path / "rates.csv"
    good.write_text("currency,rate,as_of,source\nINR,91.2,2026-12-03,ECB\nusd,1.04,2026-12-03,ECB\n")
    imported = CliRunner().invoke(app, ["rates", "import", str(good)])
    assert imported.exit_code == 0, imported.output
    listed = CliRunner().invoke(app, ["rates", "list"])
    assert "INR 91.2 as of 2026-12-03 ECB" in listed.output and "USD 1.04" in listed.output
    bad = tmp_path / "bad.csv"
    bad.write_text("currency,rate,as_of\nGBP,0.84,2026-12-03\nINR,x,2026-12-03\n")
    refused = CliRunner().invoke(app, ["rates", "import", str(bad)])
    assert refused.exit_code == 2 and "Line 3" in refused.output
    assert "GBP" not in CliRunner().invoke(app, ["rates", "list"]).output  # nothing kept from a bad file

"""Pickup at a store without HTTP: an operator makes an offer collectable at one of the product's
vendor's stores holding it; the customer accepts with "pick up at <store>" (name and phone, no
address); the order and its receipt name the store with its address and opening hours. Refused: a
pickup on an offer without a store, a pickup at another store than the offer's, a store of another
vendor or one that does not hold the product."""

from __future__ import annotations

import pytest
from catalogs import product_photo
from concierge import open_concierge
from delivery_support import DELIVERY
from sqlalchemy import select

from catalog.db import Product, Store, StoreStock, Vendor
from vision.embedder import open_embedder
from workflow import offers_service, orders, pickups, requests_service
from workflow.errors import Invalid
from workflow.models import CustomerRequest, Offer
from workflow.orders import DeliveryInvalid, check_delivery
from workflow.payments import APPROVED, TestPaymentProvider

PICKUP_FORM = {"kind": "pickup", "name": "Grace Hopper", "phone": "030 901820"}


@pytest.fixture(scope="module")
def concierge(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    concierge = open_concierge(tmp_path_factory.mktemp("pickup"), open_embedder("test-tiny", "onnx", store))
    yield concierge
    concierge.close()


def _store(concierge, vendor: str, code: str, holds: dict[int, int]) -> int:  # type: ignore[no-untyped-def]
    """A store of `vendor` in Berlin holding `holds` ({product id: quantity}); its id."""
    with concierge.sessions() as session:
        vendor_id = session.query(Vendor.id).filter(Vendor.name == vendor).scalar()
        row = Store(
            vendor_id=vendor_id,
            code=code,
            name=f"{vendor} {code}",
            address="Friedrichstraße 100",
            postcode="10117",
            city="Berlin",
            country="DE",
            lat=52.52,
            lon=13.39,
            timezone="Europe/Berlin",
            opening_hours={"mo": [["09:00", "18:00"]], "sa": [["10:00", "14:00"]]},
            phone="+49301234567",
        )
        session.add(row)
        session.flush()
        for product_id, quantity in holds.items():
            session.add(StoreStock(store_id=row.id, product_id=product_id, quantity=quantity))
        session.commit()
        return row.id


def _offered(concierge, row: int, pickup_store: int | None) -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    """A request for acme's product `row`, offered (collectable at `pickup_store`): (token, offer, product)."""
    product = concierge.product("acme", f"SKU-{row:05d}")
    request_id = concierge.request(product_photo(row))
    concierge.claim(request_id)
    chosen = {product: pickup_store} if pickup_store else {}
    pickups.check_choices(concierge.sessions, chosen)
    [offer_id] = concierge.send(request_id, [product], chosen)
    assert (pickups.offer_pickup(concierge.sessions, offer_id) is not None) == bool(pickup_store)
    return concierge.token_of(request_id), offer_id, product


def _accept(concierge, token: str, offer_id: int, delivery, key: str):  # type: ignore[no-untyped-def]
    return offers_service.accept_offer(
        concierge.sessions,
        TestPaymentProvider(),
        token,
        offer_id,
        APPROVED,
        key,
        delivery=delivery,
        secret=concierge.settings.secret_key,
    )


def test_accept_with_pickup_makes_an_order_at_the_offers_store(concierge) -> None:  # type: ignore[no-untyped-def]
    product = concierge.product("acme", "SKU-00003")
    store_id = _store(concierge, "acme", "BER-1", {product: 4})
    token, offer_id, _ = _offered(concierge, 3, store_id)

    pickup = pickups.offer_pickup(concierge.sessions, offer_id)
    assert pickup is not None and pickup.id == store_id and pickup.name == "acme BER-1"
    delivery = check_delivery(PICKUP_FORM, pickup)  # no street, city or postcode asked for
    assert (delivery.kind, delivery.store_id, delivery.country, delivery.phone) == (
        "pickup",
        store_id,
        "DE",
        "+4930901820",
    )
    result = _accept(concierge, token, offer_id, delivery, "pickup-1")
    assert result.status == "authorised"  # captured when collected

    with concierge.sessions() as session:
        request = requests_service.load_by_token(session, token)
        order = orders.order_of(session, request.id)
        assert order is not None and order.number
        assert (order.kind, order.store_id, order.line1, order.name) == ("pickup", store_id, "", "Grace Hopper")
        receipt = orders.receipt(session, session.get(CustomerRequest, request.id))
    assert receipt["delivery"]["kind"] == "pickup"
    assert receipt["store"]["name"] == "acme BER-1"
    assert receipt["store"]["address"] == "Friedrichstraße 100" and receipt["store"]["city"] == "Berlin"
    assert "09:00" in receipt["store"]["opening_hours"] and "14:00" in receipt["store"]["opening_hours"]


def test_pickup_is_refused_when_the_offer_has_no_pickup_store(concierge) -> None:  # type: ignore[no-untyped-def]
    token, offer_id, _ = _offered(concierge, 5, None)
    assert pickups.offer_pickup(concierge.sessions, offer_id) is None
    with pytest.raises(DeliveryInvalid) as refused:
        check_delivery(PICKUP_FORM, None)
    assert refused.value.field == "delivery.kind" and "address" in refused.value.message

    # A forged delivery (pickup with some store id) is refused inside the payment's transaction.
    forged = orders.Delivery("pickup", "Grace Hopper", "", "", "Berlin", "10117", "DE", "+4930901820", store_id=1)
    with pytest.raises(DeliveryInvalid):
        _accept(concierge, token, offer_id, forged, "pickup-forged")
    with concierge.sessions() as session:
        request = requests_service.load_by_token(session, token)
        assert request.status == "offers_sent"  # nothing changed, nothing charged
        assert orders.order_of(session, request.id) is None
    assert _accept(concierge, token, offer_id, DELIVERY, "ship-after").status == "authorised"  # shipping still works


def test_pickup_only_at_the_offers_own_store(concierge) -> None:  # type: ignore[no-untyped-def]
    product = concierge.product("acme", "SKU-00007")
    mine = _store(concierge, "acme", "BER-7", {product: 1})
    other = _store(concierge, "acme", "BER-8", {product: 2})
    token, offer_id, _ = _offered(concierge, 7, mine)
    wrong = check_delivery(PICKUP_FORM, pickups.PickupStore(other, "BER-8", "", "", "", "", "DE", {}, "UTC"))
    with pytest.raises(DeliveryInvalid) as refused:
        _accept(concierge, token, offer_id, wrong, "pickup-wrong")
    assert refused.value.field == "delivery.store"


def test_the_operator_may_choose_only_a_store_of_the_products_vendor_that_holds_it(concierge) -> None:  # type: ignore[no-untyped-def]
    product = concierge.product("acme", "SKU-00009")
    empty = _store(concierge, "acme", "EMPTY", {product: 0})
    elsewhere = _store(concierge, "globex", "GLX-1", {concierge.product("globex", "SKU-00041"): 3})
    with pytest.raises(Invalid, match="no longer holds"):
        pickups.check_choices(concierge.sessions, {product: empty})
    with pytest.raises(Invalid, match="not one of its vendor's stores"):
        pickups.check_choices(concierge.sessions, {product: elsewhere})
    with concierge.sessions() as session:
        assert session.get(Product, product).vendor_id != session.get(Store, elsewhere).vendor_id


def test_a_store_emptied_before_the_offers_go_refuses_them_all(concierge) -> None:  # type: ignore[no-untyped-def]
    """Checked when the page was sent, emptied before the offers were written: nothing is sent, so no
    customer sees the offer without the pickup the operator chose (the store used to be attached
    afterwards, in a transaction of its own, and silently dropped)."""
    product = concierge.product("acme", "SKU-00011")
    store_id = _store(concierge, "acme", "GONE-1", {product: 1})
    request_id = concierge.request(product_photo(11))
    concierge.claim(request_id)
    pickups.check_choices(concierge.sessions, {product: store_id})  # as the page checks it first
    with concierge.sessions() as session:
        session.get(StoreStock, (store_id, product)).quantity = 0
        session.commit()
    with pytest.raises(Invalid, match="no longer holds"):
        concierge.send(request_id, [product], {product: store_id})
    with concierge.sessions() as session:
        assert session.scalars(select(Offer).where(Offer.request_id == request_id)).all() == []
        assert session.get(CustomerRequest, request_id).status == "claimed"


def test_a_pickup_needs_a_name_and_a_valid_phone() -> None:
    store = pickups.PickupStore(1, "X", "X", "Main St 1", "10117", "Berlin", "DE", {}, "Europe/Berlin")
    with pytest.raises(DeliveryInvalid) as refused:
        check_delivery({**PICKUP_FORM, "name": " "}, store)
    assert refused.value.field == "delivery.name"
    with pytest.raises(DeliveryInvalid) as refused:
        check_delivery({**PICKUP_FORM, "phone": "12"}, store)
    assert refused.value.field == "delivery.phone"


@pytest.mark.parametrize("value", ["abc", "0", "-3", str(2**63), "9" * 25])
def test_a_pickup_store_that_is_no_row_id_is_refused_before_any_lookup(value: str) -> None:
    with pytest.raises(Invalid, match="pickup store is not valid"):
        pickups.parse_choices({"pickup_7": value}, [7])
    assert pickups.parse_choices({"pickup_7": "12", "pickup_8": ""}, [7, 8]) == {7: 12}

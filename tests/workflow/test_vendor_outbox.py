"""The vendor's outbox and orders without HTTP, over a real ingested catalog and SQLite: the states a
request walks for the vendor (candidate → offered → accepted → paid → fulfilled), who may see the
customer's photo, "not available" (the customer can no longer accept, nothing charged), and the
fulfilment that captures the payment exactly once: shipped twice, by the operator and the vendor at
once, and after a crash between the capture and the order's update (reconciliation completes it)."""

from __future__ import annotations

import threading
import time

import pytest
from catalogs import product_photo
from concierge import PASSWORD, NoMail, open_concierge
from delivery_support import DELIVERY, SHIPMENT
from sqlalchemy import select

from catalog.db import Store, Vendor
from vision.embedder import open_embedder
from workflow import offers_service, orders, payment_saga, pickups, vendor_orders, vendor_outbox
from workflow.errors import Conflict, NotFound
from workflow.models import AuditEntry, CustomerRequest, Payment
from workflow.offer_flags import flag_unavailable
from workflow.orders import check_delivery
from workflow.payments import APPROVED, TestPaymentProvider
from workflow.users import add_user


class Mailbox:
    """Records what would be mailed (template, recipient, context)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    def send_template(self, to: str, template: str, context: dict, **kwargs: object) -> None:
        self.sent.append((template, to, dict(context)))


class Crash(BaseException):
    """The process dying mid-call (not an Exception: nothing in the app catches it)."""


@pytest.fixture(scope="module")
def shop(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    concierge = open_concierge(tmp_path_factory.mktemp("vendor-outbox"), open_embedder("test-tiny", "onnx", store))
    with concierge.sessions() as session:
        ids = dict(session.execute(select(Vendor.name, Vendor.id)).all())
    concierge.acme_id, concierge.globex_id = ids["acme"], ids["globex"]
    concierge.vera = add_user(concierge.sessions, "vera-acme", "vendor", PASSWORD, vendor_id=ids["acme"])
    concierge.gus = add_user(concierge.sessions, "gus-globex", "vendor", PASSWORD, vendor_id=ids["globex"])
    yield concierge
    concierge.close()


def _offered(shop, row: int, vendor: str = "acme") -> tuple[int, str, int]:  # type: ignore[no-untyped-def]
    request_id = shop.request(product_photo(row))
    shop.claim(request_id)
    [offer_id] = shop.send(request_id, [shop.product(vendor, f"SKU-{row:05d}")])
    return request_id, shop.token_of(request_id), offer_id


def _accept(shop, provider, token: str, offer_id: int, key: str, delivery=DELIVERY):  # type: ignore[no-untyped-def]
    return offers_service.accept_offer(
        shop.sessions, provider, token, offer_id, APPROVED, key, delivery=delivery, secret=shop.settings.secret_key
    )


def _row(shop, vendor_id: int, request_id: int, offer_id: int | None = None) -> dict:  # type: ignore[no-untyped-def]
    rows = vendor_outbox.outbox_page(shop.sessions, vendor_id, per_page=500).rows
    found = [r for r in rows if r["request_id"] == request_id and (offer_id is None or r["offer_id"] == offer_id)]
    assert found, f"request {request_id} is not in the outbox"
    return found[0]


def _number(shop, request_id: int) -> str:  # type: ignore[no-untyped-def]
    with shop.sessions() as session:
        return orders.order_of(session, request_id).number


def test_the_outbox_follows_a_request_from_candidate_to_fulfilled(shop) -> None:
    provider = TestPaymentProvider()
    request_id = shop.request(product_photo(3))
    candidate = _row(shop, shop.acme_id, request_id)
    assert candidate["state"] == "candidate" and candidate["step"] == 0 and candidate["offer_id"] is None
    shop.claim(request_id)
    [offer_id] = shop.send(request_id, [shop.product("acme", "SKU-00003")])
    offered = _row(shop, shop.acme_id, request_id, offer_id)
    assert (offered["state"], offered["price"], offered["operator"]) == ("offered", "25.00", "alice")
    assert offered["can_flag"] and offered["delivery"] == "ship"
    _accept(shop, provider, shop.token_of(request_id), offer_id, "outbox-1")
    paid = _row(shop, shop.acme_id, request_id, offer_id)
    assert paid["state"] == "paid" and paid["order_number"].startswith("V-") and not paid["can_flag"]
    assert paid["delivery"] == "ship to Berlin, DE"
    assert "email" not in str(paid) and "c@d.ee" not in str(paid)  # never the customer's e-mail
    vendor_orders.ship(shop.sessions, provider, Mailbox(), shop.acme_id, paid["order_number"], shop.vera, **SHIPMENT)
    assert _row(shop, shop.acme_id, request_id, offer_id)["state"] == "fulfilled"
    # Another vendor's outbox does not list it, and the page is newest first.
    globex_rows = vendor_outbox.outbox_page(shop.sessions, shop.globex_id, per_page=500).rows
    assert all(r["offer_id"] != offer_id for r in globex_rows)
    page = vendor_outbox.outbox_page(shop.sessions, shop.acme_id, per_page=500)
    assert page.rows[0]["request_id"] == request_id and page.total >= 1


def test_the_outbox_pages_by_request(shop) -> None:
    first = vendor_outbox.outbox_page(shop.sessions, shop.acme_id, page=1, per_page=1)
    shop.request(product_photo(5))
    again = vendor_outbox.outbox_page(shop.sessions, shop.acme_id, page=1, per_page=1)
    assert again.total == first.total + 1 and again.pages == again.total
    second = vendor_outbox.outbox_page(shop.sessions, shop.acme_id, page=2, per_page=1)
    assert {r["request_id"] for r in second.rows} != {r["request_id"] for r in again.rows}
    beyond = vendor_outbox.outbox_page(shop.sessions, shop.acme_id, page=10_000, per_page=1)
    assert beyond.page == beyond.pages  # a page past the end shows the last one


def test_a_vendor_sees_a_requests_photo_only_when_its_product_was_a_candidate(shop) -> None:
    request_id = shop.request(product_photo(6))  # an acme product's photo: acme's products are candidates
    with shop.sessions() as session:
        sha = session.get(CustomerRequest, request_id).photo_sha256
        initech = Vendor(name="initech")  # a vendor with no products: never a candidate of anything
        session.add(initech)
        session.commit()
        initech_id = initech.id
    assert vendor_outbox.photo_for(shop.sessions, shop.acme_id, request_id) == sha
    with pytest.raises(NotFound):
        vendor_outbox.photo_for(shop.sessions, initech_id, request_id)
    with pytest.raises(NotFound):
        vendor_outbox.photo_for(shop.sessions, shop.acme_id, 10_000_000)
    assert vendor_outbox.outbox_page(shop.sessions, initech_id).rows == []


def test_not_available_stops_the_accept_and_charges_nothing(shop) -> None:
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(shop, 8)
    with pytest.raises(NotFound):  # another vendor's offer does not exist for globex
        flag_unavailable(shop.sessions, shop.globex_id, offer_id, shop.gus)
    assert flag_unavailable(shop.sessions, shop.acme_id, offer_id, shop.vera) is True
    assert flag_unavailable(shop.sessions, shop.acme_id, offer_id, shop.vera) is False  # a second click
    row = _row(shop, shop.acme_id, request_id, offer_id)
    assert row["state"] == "unavailable" and row["unavailable"] and not row["can_flag"]
    with pytest.raises(Conflict, match="no longer available"):
        _accept(shop, provider, token, offer_id, "unavailable-1")
    assert provider.calls == []  # nothing was charged, not even held
    with shop.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "offers_sent"
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.request_id == request_id, AuditEntry.action == "offer.unavailable")
        ).all()
    assert [a.actor for a in audited] == ["vendor:vera-acme"]


def test_an_accept_arriving_while_the_flag_commits_waits_and_is_refused(shop, monkeypatch) -> None:
    """The flag's transaction has written and not yet committed when the customer accepts: the accept
    must wait for it and then see the flag (on PostgreSQL it read "not flagged" and charged before)."""
    from workflow import audit

    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(shop, 19)
    flag_written, accept_started = threading.Event(), threading.Event()
    record = audit.record

    def record_then_hold(*args, **kwargs):  # type: ignore[no-untyped-def]
        record(*args, **kwargs)
        if kwargs.get("offer_id") == offer_id:
            flag_written.set()
            accept_started.wait(10)
            time.sleep(0.5)  # the accept is now inside its transaction, waiting or reading

    monkeypatch.setattr(audit, "record", record_then_hold)
    outcome: dict[str, object] = {}

    def accept() -> None:
        flag_written.wait(10)
        accept_started.set()
        try:
            _accept(shop, provider, token, offer_id, "during-the-flag")
            outcome["accept"] = "accepted"
        except Conflict as exc:
            outcome["accept"] = exc.message

    customer = threading.Thread(target=accept)
    customer.start()
    assert flag_unavailable(shop.sessions, shop.acme_id, offer_id, shop.vera) is True
    customer.join(30)
    assert "no longer available" in str(outcome["accept"])
    assert provider.calls == []
    with shop.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "offers_sent"


def test_an_accepted_offer_cannot_be_flagged(shop) -> None:
    _, token, offer_id = _offered(shop, 9)
    _accept(shop, TestPaymentProvider(), token, offer_id, "flag-late")
    with pytest.raises(Conflict):
        flag_unavailable(shop.sessions, shop.acme_id, offer_id, shop.vera)


def test_shipping_twice_captures_once_and_another_vendor_gets_404(shop) -> None:
    provider, mail = TestPaymentProvider(), Mailbox()
    request_id, token, offer_id = _offered(shop, 10)
    _accept(shop, provider, token, offer_id, "ship-twice")
    number = _number(shop, request_id)
    with pytest.raises(NotFound):
        vendor_orders.ship(shop.sessions, provider, mail, shop.globex_id, number, shop.gus, **SHIPMENT)
    vendor_orders.ship(shop.sessions, provider, mail, shop.acme_id, number, shop.vera, **SHIPMENT)
    with pytest.raises(Conflict, match="fulfilled already"):
        vendor_orders.ship(shop.sessions, provider, mail, shop.acme_id, number, shop.vera, **SHIPMENT)
    assert [op for op, _ in provider.calls].count("capture") == 1
    assert [t for t, *_ in mail.sent] == ["order_fulfilled"]
    [row] = [o for o in vendor_orders.vendor_order_rows(shop.sessions, shop.acme_id) if o["number"] == number]
    assert row["state"] == "shipped" and row["tracking"]["number"] == SHIPMENT["tracking"]
    assert row["payment_status"] == "captured"


def test_orders_to_fulfil_come_before_finished_ones_and_any_order_is_found_by_number(shop) -> None:
    provider, mail = TestPaymentProvider(), Mailbox()
    waiting_id, token, offer_id = _offered(shop, 16)  # the older order: paid, never shipped
    _accept(shop, provider, token, offer_id, "waits")
    shipped_id, token, offer_id = _offered(shop, 17)
    _accept(shop, provider, token, offer_id, "ships")
    waiting, shipped = _number(shop, waiting_id), _number(shop, shipped_id)
    vendor_orders.ship(shop.sessions, provider, mail, shop.acme_id, shipped, shop.vera, **SHIPMENT)
    # With a page of one, the order still to ship is shown, not the newer one that is done.
    [first] = vendor_orders.vendor_order_rows(shop.sessions, shop.acme_id, limit=1)
    assert (first["number"], first["state"]) == (waiting, "to_ship")
    [found] = vendor_orders.vendor_order_rows(shop.sessions, shop.acme_id, limit=1, number=shipped)
    assert (found["number"], found["state"]) == (shipped, "shipped")
    assert vendor_orders.vendor_order_rows(shop.sessions, shop.globex_id, number=shipped) == []


def test_the_operator_and_the_vendor_shipping_at_once_capture_once(shop) -> None:
    provider, mail = TestPaymentProvider(), Mailbox()
    request_id, token, offer_id = _offered(shop, 11)
    _accept(shop, provider, token, offer_id, "ship-at-once")
    number = _number(shop, request_id)
    start, errors = threading.Barrier(2), []

    def run(action) -> None:  # type: ignore[no-untyped-def]
        start.wait()
        try:
            action()
        except Conflict as exc:  # the loser may find it fulfilled already
            errors.append(exc)

    vendor = threading.Thread(
        target=run,
        args=(lambda: vendor_orders.ship(shop.sessions, provider, mail, shop.acme_id, number, shop.vera, **SHIPMENT),),
    )
    operator = threading.Thread(
        target=run,
        args=(lambda: offers_service.fulfil(shop.sessions, provider, request_id, shop.alice, mail, **SHIPMENT),),
    )
    for thread in (vendor, operator):
        thread.start()
    for thread in (vendor, operator):
        thread.join()
    assert [op for op, _ in provider.calls].count("capture") == 1  # the customer is charged once
    with shop.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "fulfilled"
        captured = session.scalars(
            select(AuditEntry).where(AuditEntry.request_id == request_id, AuditEntry.action == "payment.captured")
        ).all()
    assert len(captured) == 1 and len(errors) <= 1
    assert [t for t, *_ in mail.sent] == ["order_fulfilled"]  # one receipt


def test_a_crash_between_capture_and_the_order_update_resolves_itself(shop) -> None:
    provider, mail = TestPaymentProvider(), Mailbox()
    request_id, token, offer_id = _offered(shop, 12)
    _accept(shop, provider, token, offer_id, "ship-crash")
    number = _number(shop, request_id)

    def crash() -> None:
        raise Crash

    provider.meanwhile("capture", crash)  # the money is taken, then the process dies before recording it
    with pytest.raises(Crash):
        vendor_orders.ship(shop.sessions, provider, mail, shop.acme_id, number, shop.vera, **SHIPMENT)
    with shop.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "paid"  # not fulfilled yet
    payment_saga.reconcile(shop.sessions, provider, grace_s=0, outbox=mail)  # nobody clicked again
    with shop.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "fulfilled"
        payment = session.scalar(select(Payment).where(Payment.request_id == request_id))
        order = orders.order_of(session, request_id)
    assert (order.carrier, order.tracking) == (SHIPMENT["carrier"], SHIPMENT["tracking"])  # from the intent
    assert [op for op, _ in provider.calls].count("capture") == 1
    assert [t for t, *_ in mail.sent] == ["order_fulfilled"]
    assert payment.status == "captured"  # recorded by reconciliation, from the provider


def test_a_crash_after_recording_the_capture_completes_at_the_next_click(shop) -> None:
    provider, mail = TestPaymentProvider(), Mailbox()
    request_id, token, offer_id = _offered(shop, 13)
    _accept(shop, provider, token, offer_id, "ship-crash-2")
    number = _number(shop, request_id)
    real_complete = offers_service.fulfilment.complete

    def dies(*args: object, **kwargs: object) -> bool:
        raise Crash

    offers_service.fulfilment.complete = dies  # the process dies after the capture is recorded
    try:
        with pytest.raises(Crash):
            vendor_orders.ship(shop.sessions, provider, mail, shop.acme_id, number, shop.vera, **SHIPMENT)
    finally:
        offers_service.fulfilment.complete = real_complete
    with shop.sessions() as session:
        assert session.scalar(select(Payment.status).where(Payment.request_id == request_id)) == "captured"
        assert session.get(CustomerRequest, request_id).status == "paid"
    vendor_orders.ship(shop.sessions, provider, mail, shop.acme_id, number, shop.vera, **SHIPMENT)  # again
    with shop.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "fulfilled"
    assert [op for op, _ in provider.calls].count("capture") == 1


def test_a_pickup_order_is_ready_then_collected_and_captured_then(shop) -> None:
    provider, mail = TestPaymentProvider(), Mailbox()
    product = shop.product("acme", "SKU-00014")
    with shop.sessions() as session:
        row = Store(
            vendor_id=shop.acme_id,
            code="OUT-1",
            name="acme Mitte",
            address="Friedrichstraße 100",
            postcode="10117",
            city="Berlin",
            country="DE",
            lat=52.52,
            lon=13.39,
            timezone="Europe/Berlin",
            opening_hours={"mo": [["09:00", "18:00"]]},
            phone="+49301234567",
        )
        session.add(row)
        session.commit()
        store_id = row.id
    from catalog.db import StoreStock

    with shop.sessions() as session:
        session.add(StoreStock(store_id=store_id, product_id=product, quantity=3))
        session.commit()
    request_id = shop.request(product_photo(14))
    shop.claim(request_id)
    [offer_id] = shop.send(request_id, [product], {product: store_id})
    pickup = pickups.offer_pickup(shop.sessions, offer_id)
    delivery = check_delivery({"kind": "pickup", "name": "Grace Hopper", "phone": "030 901820"}, pickup)
    _accept(shop, provider, shop.token_of(request_id), offer_id, "pickup-ready", delivery=delivery)
    number = _number(shop, request_id)
    assert _row(shop, shop.acme_id, request_id, offer_id)["delivery"] == "pickup at acme Mitte"
    with pytest.raises(Conflict, match="not ready"):
        vendor_orders.collected(shop.sessions, provider, mail, shop.acme_id, number, shop.vera)
    with pytest.raises(Conflict, match="not ready"):  # nor the operator's fulfil: no money before the handover
        offers_service.fulfil(shop.sessions, provider, request_id, shop.alice, mail, carrier="", tracking="")
    assert "capture" not in [op for op, _ in provider.calls]
    with pytest.raises(NotFound):
        vendor_orders.ready(shop.sessions, mail, shop.globex_id, number, shop.gus)
    assert vendor_orders.ready(shop.sessions, mail, shop.acme_id, number, shop.vera) is True
    assert vendor_orders.ready(shop.sessions, mail, shop.acme_id, number, shop.vera) is False  # no second mail
    [(template, to, context)] = mail.sent
    assert template == "order_ready_for_pickup" and to == "c@d.ee"
    assert context["store"]["address"] == "Friedrichstraße 100" and context["number"] == number
    assert "capture" not in [op for op, _ in provider.calls]  # ready moves no money
    [row] = [o for o in vendor_orders.vendor_order_rows(shop.sessions, shop.acme_id) if o["number"] == number]
    assert row["state"] == "ready" and row["store"]["name"] == "acme Mitte"
    vendor_orders.collected(shop.sessions, provider, mail, shop.acme_id, number, shop.vera)
    assert [op for op, _ in provider.calls].count("capture") == 1
    [row] = [o for o in vendor_orders.vendor_order_rows(shop.sessions, shop.acme_id) if o["number"] == number]
    assert row["state"] == "collected" and row["payment_status"] == "captured"


def test_the_mails_render(shop) -> None:
    from mail.rendering import render

    letter = render(
        "order_ready_for_pickup",
        {
            "number": "V-2026-000001",
            "title": "Lamp",
            "vendor": "acme",
            "store": {
                "name": "acme Mitte",
                "address": "Friedrichstraße 100",
                "postcode": "10117",
                "city": "Berlin",
                "opening_hours": "Mo 09:00-18:00",
            },
            "link": "",
        },
    )
    assert letter.subject == "Your order is ready for pickup" and "Friedrichstraße 100" in letter.text
    assert "acme Mitte" in letter.html


def test_noop_mailbox_is_enough_for_operator_fulfil(shop) -> None:
    """The operator's way stays: fulfil with no vendor involved still captures and fulfils."""
    provider = TestPaymentProvider()
    request_id, token, offer_id = _offered(shop, 15)
    _accept(shop, provider, token, offer_id, "operator-way")
    offers_service.fulfil(shop.sessions, provider, request_id, shop.alice, NoMail(), **SHIPMENT)
    with shop.sessions() as session:
        assert session.get(CustomerRequest, request_id).status == "fulfilled"


def test_a_page_takes_a_fixed_number_of_queries_however_many_rows(shop) -> None:
    from sqlalchemy import event

    for row in (16, 17, 18):  # whatever ran before, there are several requests with several rows each
        shop.request(product_photo(row))
    engine = shop.sessions.kw["bind"]
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        small = vendor_outbox.outbox_page(shop.sessions, shop.acme_id, per_page=1)
        few = len(statements)
        statements.clear()
        big = vendor_outbox.outbox_page(shop.sessions, shop.acme_id, per_page=500)
        many = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(big.rows) > 3 * len(small.rows)  # many more rows ...
    assert (
        few <= many <= 10
    )  # ... in a bounded handful of grouped queries (two skipped with no offers), not one per row

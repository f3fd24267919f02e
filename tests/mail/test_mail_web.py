"""The app sends its mail through the durable outbox to a real SMTP server (aiosmtpd in this
process): a customer's request, then offers sent from the operator's workbench, arrive with the
request's link in both parts, then the operator's message, the payment and the receipt; the staff's
mailbox is told of the customer's message and the payment; the one-click unsubscribe works without a
CSRF token and stops non-transactional mail only."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from catalogs import product_photo
from delivery_support import ADDRESS_FORM, SHIPMENT
from smtp_support import SmtpServer, parts
from sqlalchemy import select
from webapp import build_catalog, start_site

from catalog.db import Product
from mail import unsubscribe
from mail.models import MailMessage, MailUnsubscribe
from mail.settings import MailSettings
from vision.embedder import open_embedder
from workflow.models import CustomerRequest, Offer
from workflow.orders import Order
from workflow.payments import APPROVED
from workflow.request_tokens import token_hash
from workflow.users import add_user

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def smtp():  # type: ignore[no-untyped-def]
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory, smtp):  # type: ignore[no-untyped-def]
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("mail-catalog"), embedder)
    mail = MailSettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        security="none",
        sender="Shop <shop@shop.example>",
        staff_address="team@shop.example",
    )
    site, server = start_site(workspace, mail=mail)
    add_user(site.sessions, "alice", "operator", PASSWORD)
    yield site
    server.stop()


def _mail_to(smtp: SmtpServer, to: str, subject: str, timeout_s: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        found = [m for m in smtp.messages if m["To"] == to and m["Subject"] == subject]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no mail {subject!r} to {to} arrived"
        time.sleep(0.05)


def test_a_request_and_its_offers_arrive_by_smtp_with_the_request_link(site, smtp) -> None:
    customer = site.client()
    submitted = customer.post(
        "/requests",
        {"email": "shopper@example.com", "words": "", "budget": ""},
        files={"photo": ("photo.jpg", product_photo(7), "image/jpeg")},
    )
    assert submitted.status_code == 303, submitted.text
    token = submitted.headers["location"].rsplit("/", 1)[1]
    received = _mail_to(smtp, "shopper@example.com", "Your Vitrine request")
    text, html = parts(received)
    assert f"/r/{token}" in text and "Keep this link private" in text and f"/r/{token}</a>" in html

    with site.sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))
        products = session.scalars(select(Product.id).order_by(Product.id).limit(2)).all()
    alice = site.client()
    assert alice.login("alice", PASSWORD).status_code == 303
    assert alice.post(f"/operator/requests/{request_id}/claim").status_code == 303
    form = {"product_id": [str(p) for p in products], **{f"price_{p}": "25.00" for p in products}}
    sent = alice.post(f"/operator/requests/{request_id}/offers", form)
    assert sent.status_code == 303, sent.text

    offers = _mail_to(smtp, "shopper@example.com", "Offers for your Vitrine request")
    text, html = parts(offers)
    assert "alice found 2 offers for you." in text
    link = next(word for word in text.split() if f"/r/{token}" in word)
    assert link.startswith("http") and f'<a href="{link}">' in html
    assert customer.get(urlsplit(link).path).status_code == 200  # the link opens the request page

    said = alice.post(f"/operator/requests/{request_id}/messages", {"body": "Both come in <blue>."})
    assert said.status_code == 303, said.text
    text, html = parts(_mail_to(smtp, "shopper@example.com", "A message about your Vitrine request"))
    assert "alice wrote:" in text and "Both come in <blue>." in text and "Both come in &lt;blue&gt;." in html

    asked = customer.post(f"/r/{token}/messages", {"body": "Is it <red> too?"})
    assert asked.status_code == 303, asked.text
    text, html = parts(_mail_to(smtp, "team@shop.example", f"Request #{request_id}: the customer wrote"))
    assert "Is it <red> too?" in text and "Is it &lt;red&gt; too?" in html  # a staff notification
    assert f'/operator/requests/{request_id}">Open it on the workbench' in html

    with site.sessions() as session:
        offer = session.scalars(select(Offer).where(Offer.request_id == request_id).order_by(Offer.id)).first()
    paid = customer.post(
        f"/r/{token}/offers/{offer.id}/accept", {"card_number": APPROVED, "idempotency_key": "m1", **ADDRESS_FORM}
    )
    assert paid.status_code == 303, paid.text
    with site.sessions() as session:
        number = session.scalar(select(Order.number).where(Order.request_id == request_id))
    text, html = parts(_mail_to(smtp, "shopper@example.com", f"Order {number} confirmed: payment authorised"))
    assert f"authorised for 25.00 {offer.currency}" in text and f"25.00 {offer.currency}</strong>" in html
    assert "Unter den Linden 1" in text and "Germany" in html  # the delivery address
    staff = _mail_to(smtp, "team@shop.example", f"Request #{request_id} is paid: 25.00 {offer.currency}")
    assert offer.vendor in parts(staff)[0] and f"/operator/requests/{request_id}" in parts(staff)[0]
    assert alice.post(f"/operator/requests/{request_id}/fulfil", {"confirm": "yes", **SHIPMENT}).status_code == 303
    text, html = parts(_mail_to(smtp, "shopper@example.com", "Your order is on its way"))  # the receipt
    assert f"We charged 25.00 {offer.currency}" in text and offer.vendor in text and "Payment number" in html
    assert f"order {number}" in text and "DHL, tracking number JD014600006281234567" in text

    deadline = time.monotonic() + 10  # the server has the last mail; the sender records it just after
    while True:
        with site.sessions() as session:
            rows = session.scalars(select(MailMessage).where(MailMessage.recipient == "shopper@example.com")).all()
        if {row.status for row in rows} == {"sent"} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [row.template for row in rows] == [
        "request_received",
        "offers_arrived",
        "operator_message",
        "order_confirmed",
        "order_fulfilled",
    ]
    assert {row.status for row in rows} == {"sent"} and not any(row.list_unsubscribe for row in rows)
    customer.close()
    alice.close()


def test_a_cancelled_request_is_mailed_with_the_reason(site, smtp) -> None:
    customer, alice = site.client(), site.client()
    submitted = customer.post(
        "/requests",
        {"email": "other@example.com", "words": "", "budget": ""},
        files={"photo": ("photo.jpg", product_photo(9), "image/jpeg")},
    )
    token = submitted.headers["location"].rsplit("/", 1)[1]
    with site.sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))
    assert alice.login("alice", PASSWORD).status_code == 303
    cancelled = alice.post(f"/operator/requests/{request_id}/cancel", {"reason": "out of <stock>", "confirm": "yes"})
    assert cancelled.status_code == 303, cancelled.text
    text, html = parts(_mail_to(smtp, "other@example.com", "Your Vitrine request was cancelled"))
    assert "alice cancelled your request: out of <stock>" in text and "out of &lt;stock&gt;" in html
    customer.close()
    alice.close()


def test_one_click_unsubscribe_stops_non_transactional_mail_only(site, smtp) -> None:
    outbox = site.app.state.outbox
    outbox.send_template(
        "reader@example.com", "payment_authorised", {"amount": "9.99", "currency": "EUR"}, transactional=False
    )
    news = _mail_to(smtp, "reader@example.com", "Payment authorised")
    assert news["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    web = news["List-Unsubscribe"].split(",")[0].strip("<> ")
    path = urlsplit(web).path
    assert path.startswith("/mail/unsubscribe/")

    browser = site.client()
    form = browser.get(path)  # a person following the link: a confirm button, nothing changed yet
    assert (
        form.status_code == 200 and 'data-testid="unsubscribe-form"' in form.text and "reader@example.com" in form.text
    )
    with site.sessions() as session:
        assert session.get(MailUnsubscribe, "reader@example.com") is None
    clicked = browser.http.post(path, data={"List-Unsubscribe": "One-Click"})  # as a mail client: no cookie, no CSRF
    assert clicked.status_code == 200 and "You are unsubscribed" in clicked.text
    assert browser.http.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # again: still fine
    with site.sessions() as session:
        assert session.get(MailUnsubscribe, "reader@example.com") is not None

    bad = browser.get(path[:-3] + "xyz")
    assert bad.status_code == 404 and "unsubscribe link is not valid" in bad.text
    assert browser.http.post(path[:-3] + "xyz").status_code == 404

    before = len(smtp.messages)
    outbox.send_template(
        "reader@example.com", "payment_authorised", {"amount": "1.00", "currency": "EUR"}, transactional=False
    )
    outbox.send_template("reader@example.com", "payment_authorised", {"amount": "2.00", "currency": "EUR"})
    receipt = _mail_to(smtp, "reader@example.com", "Payment authorised")
    deadline = time.monotonic() + 15
    while "2.00 EUR" not in parts(receipt)[0]:
        assert time.monotonic() < deadline, "the transactional mail did not arrive"
        time.sleep(0.05)
        receipt = _mail_to(smtp, "reader@example.com", "Payment authorised")
    assert len(smtp.messages) == before + 1  # the non-transactional one was held back
    with site.sessions() as session:
        statuses = session.scalars(
            select(MailMessage.status).where(MailMessage.recipient == "reader@example.com").order_by(MailMessage.id)
        ).all()
    assert statuses == ["sent", "suppressed", "sent"]
    assert unsubscribe.address_of(site.settings.secret_key, path.rsplit("/", 1)[1]) == "reader@example.com"
    browser.close()

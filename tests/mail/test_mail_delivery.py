"""The durable outbox and its sender against a real SMTP server (aiosmtpd in this process) and a real
SQLite database: both parts arrive, outages are retried with back-off, 5xx fails at once with the
reason, a send cut short by a crash is delivered by the next pass, unsubscribed addresses get only
transactional mail, and login, STARTTLS and implicit TLS settings are used."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smtp_support import SmtpServer, parts, self_signed_certificate, server_context
from sqlalchemy import select
from typer.testing import CliRunner

from catalog.db import make_engine, session_factory
from catalog.workspace import Workspace
from cli.main import app as cli_app
from mail import unsubscribe
from mail.delivery import FileTransport, SmtpTransport, transport_for
from mail.durable import DatabaseOutbox
from mail.models import MailMessage
from mail.sender import Sender
from mail.settings import MailSettings

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
SECRET = "test-secret"
SITE = "https://shop.example"
OFFERS = {"operator": "Alice", "count": 2, "link": f"{SITE}/r/abc123"}


class Clock:
    """The sender's idea of now, moved by the test (back-off is minutes long)."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC) + timedelta(seconds=1)  # just after the messages were queued

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    engine = make_engine(Workspace(tmp_path / "home").database_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def outbox(sessions) -> DatabaseOutbox:  # type: ignore[no-untyped-def]
    return DatabaseOutbox(sessions, secret=SECRET, base_url=SITE, sender="Vitrine <shop@shop.example>")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def plain(server: SmtpServer, **overrides) -> MailSettings:  # type: ignore[no-untyped-def]
    options = {"smtp_host": "127.0.0.1", "smtp_port": server.port, "security": "none", "timeout_s": 5.0}
    options["sender"] = "Vitrine <shop@shop.example>"
    return MailSettings(**{**options, **overrides})


def sender_for(sessions, settings: MailSettings, clock: Clock | None = None) -> Sender:  # type: ignore[no-untyped-def]
    return Sender(sessions, settings, SmtpTransport(settings), **({"clock": clock} if clock else {}))


def only_row(sessions) -> MailMessage:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.scalars(select(MailMessage)).one()


def test_an_enqueued_template_message_arrives_with_a_text_and_an_html_part(sessions, outbox, smtp) -> None:
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    queued = only_row(sessions)
    assert queued.status == "queued" and queued.attempts == 0  # durable before any delivery
    result = sender_for(sessions, plain(smtp)).run_once()
    assert (result.sent, result.retried, result.failed) == (1, 0, 0)
    (message,) = smtp.wait_for(1)
    text, html = parts(message)
    assert message["Subject"] == "Offers for your Vitrine request" and message["To"] == "c@example.com"
    assert message["From"] == "Vitrine <shop@shop.example>" and message["Message-ID"] == queued.message_id
    assert "Alice found 2 offers for you." in text and f"{SITE}/r/abc123" in text
    assert f'<a href="{SITE}/r/abc123">' in html and "<p>Alice found 2 offers for you.</p>" in html
    assert "List-Unsubscribe" not in message  # transactional: no unsubscribe
    assert smtp.handler.envelopes == [("shop@shop.example", ["c@example.com"])]
    sent = only_row(sessions)
    assert sent.status == "sent" and sent.attempts == 1 and sent.sent_at is not None and sent.last_error == ""
    assert "abc123" in queued.text and (sent.text, sent.html) == ("", "")  # the link (a key) is not kept once sent
    assert sent.subject == "Offers for your Vitrine request" and sent.recipient == "c@example.com"
    assert sender_for(sessions, plain(smtp)).run_once().sent == 0  # never twice


def test_a_message_in_the_callers_transaction_exists_only_if_it_commits(sessions, outbox, smtp) -> None:
    woken: list[str] = []
    outbox.on_enqueue(lambda: woken.append("wake"))
    with sessions() as session:
        outbox.send_template("gone@example.com", "offers_arrived", OFFERS, session=session)
        session.rollback()  # the step failed: no mail about it
    with sessions() as session:
        outbox.send_template("kept@example.com", "offers_arrived", OFFERS, session=session)
        with sessions() as other:
            assert other.scalars(select(MailMessage)).all() == []  # not visible before the commit
        assert woken == []
        session.commit()
    assert woken == ["wake"]  # the sender wakes when the step commits
    assert only_row(sessions).recipient == "kept@example.com"
    assert sender_for(sessions, plain(smtp)).run_once().sent == 1
    assert [m["To"] for m in smtp.wait_for(1)] == ["kept@example.com"]


def test_a_plain_text_notice_gets_an_escaped_html_part(sessions, outbox, smtp) -> None:
    outbox.send("c@example.com", "Hello", "Look at <b>this</b>:\nhttps://shop.example/r/x?a=1&b=2\n\nBye")
    sender_for(sessions, plain(smtp)).run_once()
    text, html = parts(smtp.wait_for(1)[0])
    assert text.startswith("Look at <b>this</b>:")
    assert "Look at &lt;b&gt;this&lt;/b&gt;:" in html and "<b>this</b>" not in html
    assert '<a href="https://shop.example/r/x?a=1&amp;b=2">' in html and "<p>Bye</p>" in html


def test_smtp_down_is_retried_with_back_off_and_delivered_when_it_comes_back(sessions, outbox) -> None:
    server, clock = SmtpServer(), Clock()  # not started: its port refuses connections
    sender = sender_for(sessions, plain(server, backoff_s=30.0), clock)
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    first = sender.run_once()
    assert (first.sent, first.retried) == (0, 1) and first.next_due_s == pytest.approx(30.0)
    row = only_row(sessions)
    assert row.status == "queued" and row.attempts == 1 and "could not reach 127.0.0.1" in row.last_error
    assert sender.run_once().retried == 0  # not due yet: no attempt inside the back-off
    clock.advance(30)
    assert sender.run_once().retried == 1
    assert only_row(sessions).attempts == 2
    clock.advance(59)
    assert sender.run_once().retried == 0  # the second wait is twice as long
    clock.advance(1)
    server.handler.reply = "451 4.3.0 Try again later"  # up, but busy: a 4xx is temporary too
    server.start()
    try:
        assert sender.run_once().retried == 1
        row = only_row(sessions)
        assert row.attempts == 3 and "451" in row.last_error and "Try again later" in row.last_error
        server.handler.reply = None
        clock.advance(120)
        assert sender.run_once().sent == 1
        (message,) = server.wait_for(1)
        assert message["Message-ID"] == row.message_id
        done = only_row(sessions)
        assert done.status == "sent" and done.attempts == 4 and done.last_error == ""
    finally:
        server.stop()


def test_a_permanent_550_fails_at_once_with_the_reason(sessions, outbox, smtp) -> None:
    clock = Clock()
    smtp.handler.reply = "550 5.1.1 No such mailbox here"
    sender = sender_for(sessions, plain(smtp), clock)
    outbox.send_template("nobody@example.com", "offers_arrived", OFFERS)
    assert sender.run_once().failed == 1
    row = only_row(sessions)
    assert (
        row.status == "failed" and row.attempts == 1 and "550" in row.last_error and "No such mailbox" in row.last_error
    )
    smtp.handler.reply = None
    clock.advance(24 * 3600)
    assert sender.run_once().sent == 0 and only_row(sessions).attempts == 1  # no more tries
    assert smtp.messages == []


def test_temporary_failures_end_as_failed_after_the_last_attempt(sessions, outbox) -> None:
    clock = Clock()
    sender = sender_for(sessions, plain(SmtpServer(), max_attempts=3, backoff_s=1.0), clock)
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    for _ in range(2):
        assert sender.run_once().retried == 1
        clock.advance(3600)
    assert sender.run_once().failed == 1
    row = only_row(sessions)
    assert row.status == "failed" and row.attempts == 3 and row.last_error.startswith("gave up after 3 attempts")


def test_two_senders_at_once_deliver_each_message_once(sessions, outbox, smtp) -> None:
    for number in range(30):
        outbox.send_template(f"c{number}@example.com", "offers_arrived", OFFERS)
    settings = plain(smtp)
    results: list[int] = []

    def run() -> None:  # like two app processes, or the app and `vitrine mail send`
        results.append(sender_for(sessions, settings).run_once().sent)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(results) == 30
    received = smtp.wait_for(30)
    assert sorted(m["To"] for m in received) == sorted(f"c{n}@example.com" for n in range(30))
    assert len(smtp.messages) == 30  # none twice
    with sessions() as session:
        assert set(session.scalars(select(MailMessage.attempts)).all()) == {1}


class Died(BaseException):
    """The process dying mid-send (nothing after the SMTP conversation runs)."""


class DiesMidSend(SmtpTransport):
    def deliver(self, message) -> None:  # type: ignore[no-untyped-def]
        super().deliver(message)  # the server got it; the answer is never recorded
        raise Died


def test_a_crash_mid_send_leaves_a_message_the_next_pass_delivers(sessions, outbox, smtp) -> None:
    clock = Clock()
    settings = plain(smtp, lease_s=300.0)
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    with pytest.raises(Died):
        Sender(sessions, settings, DiesMidSend(settings), clock).run_once()
    stuck = only_row(sessions)
    assert stuck.status == "sending" and stuck.attempts == 1
    survivor = sender_for(sessions, settings, clock)
    clock.advance(299)
    assert survivor.run_once().sent == 0  # the lease still holds: no second sender takes it
    clock.advance(2)
    assert survivor.run_once().sent == 1  # lease over: at least once, never lost
    first, again = smtp.wait_for(2)
    assert first["Message-ID"] == again["Message-ID"] == stuck.message_id  # a receiver can tell it is a retry
    assert only_row(sessions).status == "sent"


def test_unsubscribed_addresses_get_transactional_mail_only(sessions, outbox, smtp) -> None:
    sender = sender_for(sessions, plain(smtp))
    outbox.send_template(
        "Pat@Example.com", "payment_authorised", {"amount": "12.50", "currency": "EUR"}, transactional=False
    )
    sender.run_once()
    (news,) = smtp.wait_for(1)
    token = unsubscribe.token_for(SECRET, "pat@example.com")
    web = f"{SITE}/mail/unsubscribe/{token}"
    assert news["List-Unsubscribe"].startswith(f"<{web}>, <mailto:shop@shop.example?subject=unsubscribe")
    assert news["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(news)
    assert web in text and f'href="{web}"' in html

    outbox.send_template(
        "pat@example.com", "payment_authorised", {"amount": "1", "currency": "EUR"}, transactional=False
    )
    assert unsubscribe.suppress(sessions, unsubscribe.address_of(SECRET, token)) is True
    assert unsubscribe.suppress(sessions, "PAT@example.com") is False  # a second click changes nothing
    outbox.send_template(
        "pat@example.com", "payment_authorised", {"amount": "2", "currency": "EUR"}, transactional=False
    )
    outbox.send_template("pat@example.com", "payment_authorised", {"amount": "3.00", "currency": "EUR"})
    result = sender.run_once()
    assert (result.sent, result.suppressed) == (1, 1)  # queued before the click: held back at delivery
    received = smtp.wait_for(2)
    assert len(smtp.messages) == 2 and "3.00 EUR" in parts(received[1])[0]  # the transactional one still went
    with sessions() as session:
        statuses = session.scalars(select(MailMessage.status).order_by(MailMessage.id)).all()
    assert statuses == ["sent", "suppressed", "suppressed", "sent"]


def test_a_forged_unsubscribe_token_is_refused() -> None:
    token = unsubscribe.token_for(SECRET, "pat@example.com")
    assert unsubscribe.address_of(SECRET, token) == "pat@example.com"
    other = unsubscribe.token_for(SECRET, "someone@example.com")
    for forged in (token.split(".")[0] + "." + other.split(".")[1], token[:-2], "", "x.y", token + "A"):
        with pytest.raises(unsubscribe.BadUnsubscribeToken):
            unsubscribe.address_of(SECRET, forged)
    with pytest.raises(unsubscribe.BadUnsubscribeToken):
        unsubscribe.address_of("another-installation", token)


def test_user_and_password_log_in(sessions, outbox) -> None:
    server = SmtpServer(users={"mailer": "s3cret pass"}).start()
    try:
        outbox.send_template("c@example.com", "offers_arrived", OFFERS)
        wrong = sender_for(sessions, plain(server, user="mailer", password="nope"))
        assert wrong.run_once().retried == 1  # a refused login is this installation's fault: kept, retried
        assert "SMTP login refused: 535" in only_row(sessions).last_error
        later = Clock()
        later.advance(60)  # past the back-off
        right = sender_for(sessions, plain(server, user="mailer", password="s3cret pass"), later)
        assert right.run_once().sent == 1 and server.handler.logins == ["mailer"]
        assert server.wait_for(1)[0]["Subject"] == "Offers for your Vitrine request"
    finally:
        server.stop()


def test_starttls_with_login_and_implicit_tls(sessions, outbox, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    starttls = SmtpServer(users={"mailer": "pw"}, tls_context=server_context(cert, key), require_starttls=True)
    implicit = SmtpServer(ssl_context=server_context(cert, key))
    starttls.start()
    implicit.start()
    try:
        outbox.send_template("c@example.com", "offers_arrived", OFFERS)
        over_starttls = plain(starttls, security="starttls", user="mailer", password="pw", ca_file=str(cert))
        assert sender_for(sessions, over_starttls).run_once().sent == 1
        assert starttls.handler.logins == ["mailer"] and len(starttls.wait_for(1)) == 1

        outbox.send_template("d@example.com", "offers_arrived", OFFERS)
        over_tls = plain(implicit, security="tls", ca_file=str(cert))
        assert sender_for(sessions, over_tls).run_once().sent == 1
        assert implicit.wait_for(1)[0]["To"] == "d@example.com"

        untrusted = plain(implicit, security="tls")  # the system's CAs do not know this certificate
        outbox.send_template("e@example.com", "offers_arrived", OFFERS)
        assert sender_for(sessions, untrusted).run_once().retried == 1
    finally:
        starttls.stop()
        implicit.stop()


def test_starttls_required_but_not_offered_never_sends_the_password(sessions, outbox, smtp) -> None:
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    result = sender_for(sessions, plain(smtp, security="starttls", user="mailer", password="pw")).run_once()
    assert result.retried == 1 and "does not support" in only_row(sessions).last_error
    assert smtp.messages == [] and smtp.handler.logins == []


def test_without_smtp_settings_messages_become_eml_files(sessions, outbox, tmp_path: Path) -> None:
    settings = MailSettings.from_env({})
    assert not settings.smtp and isinstance(transport_for(settings, tmp_path / "outbox"), FileTransport)
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    assert Sender(sessions, settings, transport_for(settings, tmp_path / "outbox")).run_once().sent == 1
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    content = eml.read_text()
    assert "Offers for your Vitrine request" in content and "text/html" in content and "text/plain" in content


def test_settings_from_the_environment() -> None:
    settings = MailSettings.from_env(
        {"VITRINE_SMTP_HOST": "smtp.example", "VITRINE_SMTP_SECURITY": "TLS", "VITRINE_MAIL_FROM": "Shop <a@b.c>"}
    )
    assert (settings.smtp_host, settings.smtp_port, settings.security, settings.sender) == (
        "smtp.example",
        465,
        "tls",
        "Shop <a@b.c>",
    )
    assert MailSettings.from_env({"VITRINE_SMTP_HOST": "h"}).smtp_port == 587
    with pytest.raises(ValueError, match="VITRINE_SMTP_SECURITY must be one of"):
        MailSettings.from_env({"VITRINE_SMTP_SECURITY": "ssl"})
    with pytest.raises(ValueError, match="VITRINE_SMTP_PORT must be a number"):
        MailSettings.from_env({"VITRINE_SMTP_PORT": "smtp"})


def test_vitrine_mail_send_and_status(smtp, monkeypatch, tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    monkeypatch.setenv("VITRINE_HOME", str(home))
    engine = make_engine(Workspace(home).database_url)
    sessions = session_factory(engine)
    outbox = DatabaseOutbox(sessions, secret=SECRET, base_url=SITE)
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    outbox.send_template("d@example.com", "offers_arrived", OFFERS)
    runner = CliRunner()
    monkeypatch.setenv("VITRINE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("VITRINE_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("VITRINE_SMTP_SECURITY", "none")
    status = runner.invoke(cli_app, ["mail", "status", "--json"])
    assert status.exit_code == 0 and '"queued": 2' in status.output
    sent = runner.invoke(cli_app, ["mail", "send", "--json"])
    assert sent.exit_code == 0 and '"sent": 2' in sent.output, sent.output
    assert len(smtp.wait_for(2)) == 2
    outbox.send_template("c@example.com", "offers_arrived", OFFERS)
    smtp.handler.reply = "554 5.7.1 Rejected"
    assert runner.invoke(cli_app, ["mail", "send"]).exit_code == 0
    listed = runner.invoke(cli_app, ["mail", "status"])
    assert "sent: 2" in listed.output and "failed: 1" in listed.output and "554 5.7.1 Rejected" in listed.output
    outbox.send_template("d@example.com", "offers_arrived", OFFERS)
    smtp.handler.reply = "451 4.7.1 Greylisted"
    assert '"retried": 1' in runner.invoke(cli_app, ["mail", "send", "--json"]).output
    listed = runner.invoke(cli_app, ["mail", "status"])
    assert "1 waiting to be tried again" in listed.output and "451 4.7.1 Greylisted" in listed.output
    engine.dispose()

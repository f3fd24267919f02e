"""A real SMTP server in the test process (aiosmtpd on 127.0.0.1, its own thread): what it received,
parsed, and switches to make it refuse (4xx or 5xx), require a login, or speak TLS."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    """aiosmtpd's handler: keeps every message, or answers `reply` (e.g. '451 4.3.0 busy') instead."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reply: str | None = None
        self.logins: list[str] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        if self.reply is not None:
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.changed:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.changed.notify_all()
        return "250 OK"


class SmtpServer:
    """Start with `start()`; `stop()` makes its port refuse connections until `start()` again."""

    def __init__(self, users: dict[str, str] | None = None, **tls: Any) -> None:
        self.port = free_port()
        self.handler = Recorder()
        self.users = users
        self.tls = tls  # tls_context=..., require_starttls=True (STARTTLS) or ssl_context=... (implicit TLS)
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
        if isinstance(auth_data, LoginPassword) and self.users is not None:
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                self.handler.logins.append(login)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        options: dict[str, Any] = dict(self.tls)
        if self.users is not None:
            # aiosmtpd warns (from its thread) about a login over plain text: the tests mean it, on loopback.
            options.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=False)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[EmailMessage]:
        """The first `count` messages, once that many arrived (AssertionError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        with self.handler.changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"the SMTP server received {len(self.messages)} messages, expected {count}"
                self.handler.changed.wait(left)
            return list(self.messages[:count])


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML parts of a received message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "the message lacks a text or an HTML part"
    return text.get_content(), html.get_content()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key (openssl; skipped where it is missing)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS tests")
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context

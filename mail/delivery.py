"""Handing one finished message to the world: over SMTP, or as an .eml file when no server is
configured. A failure says whether trying again later can help (`TemporaryFailure`: the server is
down, busy or answered 4xx) or not (`PermanentFailure`: it answered 5xx for this message)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from mail.outbox import FileOutbox
from mail.settings import MailSettings


class DeliveryFailure(Exception):
    """Why a message did not go (`str()` is recorded on the message)."""


class TemporaryFailure(DeliveryFailure):
    pass


class PermanentFailure(DeliveryFailure):
    pass


class Transport(Protocol):
    def deliver(self, message: EmailMessage) -> None:
        """Deliver `message` or raise TemporaryFailure / PermanentFailure."""


def _reason(code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {said}".strip()


def _answer(code: int, text: bytes | str, what: str) -> DeliveryFailure:
    """A server's refusal: 5xx is final for this message, anything else may pass later."""
    kind = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    return kind(f"{what}: {_reason(code, text)}")


class SmtpTransport:
    """One connection per message (smtplib, blocking: the sender runs it in a worker thread).

    STARTTLS is required when configured (a server that does not offer it is a temporary failure,
    so the password is never sent in the clear). A refused login is temporary too: it is this
    installation's settings that are wrong, not the message, and it goes once they are fixed."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.timeout_s, context=self._tls())
        return smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout_s)

    def deliver(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            with self._connect() as client:
                client.ehlo()
                if s.security == "starttls":
                    client.starttls(context=self._tls())
                    client.ehlo()
                if s.user:
                    client.login(s.user, s.password)
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _answer(code, text, "recipient refused") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(f"SMTP login refused: {_reason(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPSenderRefused as exc:
            raise _answer(exc.smtp_code, exc.smtp_error, "sender refused") from None
        except smtplib.SMTPResponseException as exc:
            raise _answer(exc.smtp_code, exc.smtp_error, "refused") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise TemporaryFailure(f"the SMTP server does not support this: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused connection, timeout, TLS failure, hang-up
            raise TemporaryFailure(
                f"could not reach {s.smtp_host}:{s.smtp_port}: {exc.__class__.__name__}: {exc}"
            ) from None


class FileTransport:
    """No SMTP server: each message becomes an .eml file in the data folder's outbox (the demo)."""

    def __init__(self, folder: Path) -> None:
        self.files = FileOutbox(folder)

    def deliver(self, message: EmailMessage) -> None:
        try:
            self.files.write(message)
        except OSError as exc:  # a full disk passes; try again later
            raise TemporaryFailure(f"could not write the .eml file: {exc}") from None


def transport_for(settings: MailSettings, folder: Path) -> Transport:
    return SmtpTransport(settings) if settings.smtp else FileTransport(folder)

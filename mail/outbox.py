"""Outgoing e-mail, pluggable. The app's outbox is `mail.durable.DatabaseOutbox` (a table the
sender delivers from); `FileOutbox` writes each message to a file under the data folder and logs it,
which is also how the sender delivers when no SMTP server is configured, so an installation without
one still keeps every notice it would send."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from catalog.private_files import private_folder, write_private
from mail.rendering import Letter, render

log = logging.getLogger("vitrine.outbox")


class Outbox(Protocol):
    def send(self, to: str, subject: str, body: str) -> None:
        """A plain-text message (the older notices; each moves to a template in time)."""

    def send_template(
        self,
        to: str,
        template: str,
        context: Mapping[str, Any],
        *,
        transactional: bool = True,
        session: Session | None = None,
    ) -> None:
        """The message `mail/templates/<template>.txt|.html` filled with `context`. Non-transactional
        mail (announcements, invitations to come back) carries a one-click unsubscribe. Given the
        caller's `session`, the message is part of its transaction: it exists exactly when the step
        that caused it commits (the durable outbox; other outboxes send at once)."""


def notify_staff(
    outbox: Outbox | None, template: str, context: Mapping[str, Any], session: Session | None = None
) -> None:
    """A notice for the staff's team mailbox, when the outbox has one (`DatabaseOutbox` with
    VITRINE_STAFF_EMAIL set); other outboxes have no staff address, so nothing is sent."""
    notify = getattr(outbox, "notify_staff", None)
    if notify is not None:
        notify(template, context, session=session)


def compose(sender: str, to: str, letter: Letter) -> EmailMessage:
    """A multipart/alternative message: the plain-text part first, the HTML part second."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, letter.subject
    message.set_content(letter.text)
    message.add_alternative(letter.html, subtype="html")
    return message


class FileOutbox:
    """Each message becomes one .eml file in `folder` (written aside, then renamed)."""

    def __init__(self, folder: Path, sender: str = "Vitrine <no-reply@vitrine.invalid>") -> None:
        self.folder = folder
        self.sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        self._write(to, message)

    def send_template(
        self,
        to: str,
        template: str,
        context: Mapping[str, Any],
        *,
        transactional: bool = True,
        session: Session | None = None,
    ) -> None:
        self._write(to, compose(self.sender, to, render(template, context)))

    def write(self, message: EmailMessage) -> None:
        """A finished message as a file (how the durable outbox delivers without an SMTP server)."""
        self._write(str(message["To"]), message)

    def _write(self, to: str, message: EmailMessage) -> None:
        private_folder(self.folder)  # mail holds customers' links and addresses: 0700, files 0600
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{secrets.token_hex(4)}.eml"
        write_private(path, bytes(message))
        log.info("mail to %s: %s (%s)", to, message["Subject"], path)

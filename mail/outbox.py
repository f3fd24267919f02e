"""Outgoing e-mail, pluggable. The default writes each message to a file under the data folder
and logs it, so an installation without a mail server still keeps every notice it would send."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

from mail.rendering import Letter, render

log = logging.getLogger("vitrine.outbox")


class Outbox(Protocol):
    def send(self, to: str, subject: str, body: str) -> None:
        """A plain-text message (the older notices; each moves to a template in time)."""

    def send_template(self, to: str, template: str, context: Mapping[str, Any], *, transactional: bool = True) -> None:
        """The message `mail/templates/<template>.txt|.html` filled with `context`. Non-transactional
        mail (announcements, invitations to come back) carries a one-click unsubscribe."""


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

    def send_template(self, to: str, template: str, context: Mapping[str, Any], *, transactional: bool = True) -> None:
        self._write(to, compose(self.sender, to, render(template, context)))

    def _write(self, to: str, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{secrets.token_hex(4)}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(bytes(message))
        os.replace(temporary, path)
        log.info("mail to %s: %s (%s)", to, message["Subject"], path)

"""Outgoing e-mail, pluggable. The default writes each message to a file under the data folder
and logs it, so an installation without a mail server still keeps every notice it would send."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

log = logging.getLogger("vitrine.outbox")


class Outbox(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class FileOutbox:
    """Each message becomes one .eml file in `folder` (written aside, then renamed)."""

    def __init__(self, folder: Path, sender: str = "Vitrine <no-reply@vitrine.invalid>") -> None:
        self.folder = folder
        self.sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{secrets.token_hex(4)}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(bytes(message))
        os.replace(temporary, path)
        log.info("mail to %s: %s (%s)", to, subject, path)

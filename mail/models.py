"""The outbox's tables, on the catalog's declarative Base so one database (and one migration chain)
holds everything: each message as it will be sent, and the addresses that asked for no more
non-transactional mail.

A message's `next_attempt_at` is when the sender may next pick it up: for a `queued` message the
end of its back-off, for a `sending` one the end of its lease, so a sender that died mid-send leaves
a message that the next pass takes up again (at least once, never lost).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base


def now() -> datetime:
    return datetime.now(UTC)


class MailStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # non-transactional mail to an address that unsubscribed: kept, not sent


class MailMessage(Base):
    __tablename__ = "mail_messages"
    __table_args__ = (Index("ix_mail_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)  # the Message-ID header, kept across retries
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(100), default="")  # empty for the older plain-text notices
    transactional: Mapped[bool] = mapped_column(Boolean, default=True)
    list_unsubscribe: Mapped[str] = mapped_column(
        Text, default=""
    )  # the header, made at enqueue; empty when transactional
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MailUnsubscribe(Base):
    """An address (lower-cased) that gets no more non-transactional mail."""

    __tablename__ = "mail_unsubscribes"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)

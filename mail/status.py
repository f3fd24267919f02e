"""What the outbox holds: counts per state and the latest failures (for `vitrine mail status`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from mail.models import MailMessage, MailStatus


def outbox_status(sessions: sessionmaker, recent: int = 10) -> dict[str, Any]:
    with sessions() as session:
        found = dict(session.execute(select(MailMessage.status, func.count()).group_by(MailMessage.status)).all())
        oldest = session.scalar(
            select(func.min(MailMessage.created_at)).where(
                MailMessage.status.in_((MailStatus.QUEUED.value, MailStatus.SENDING.value))
            )
        )
        retrying = session.execute(
            select(func.count(), func.min(MailMessage.next_attempt_at), func.max(MailMessage.id)).where(
                MailMessage.status == MailStatus.QUEUED.value, MailMessage.attempts > 0
            )
        ).one()
        latest_error = session.scalar(select(MailMessage.last_error).where(MailMessage.id == retrying[2]))
        failures = session.scalars(
            select(MailMessage)
            .where(MailMessage.status == MailStatus.FAILED.value)
            .order_by(MailMessage.id.desc())
            .limit(recent)
        ).all()
        return {
            "counts": {status.value: int(found.get(status.value, 0)) for status in MailStatus},
            "oldest_waiting": oldest.isoformat() if oldest else None,
            "retrying": {
                "count": int(retrying[0]),
                "next_attempt_at": retrying[1].isoformat() if retrying[1] else None,
                "latest_error": latest_error or "",
            },
            "failures": [
                {
                    "id": row.id,
                    "to": row.recipient,
                    "subject": row.subject,
                    "attempts": row.attempts,
                    "error": row.last_error,
                }
                for row in failures
            ],
        }

"""The audit trail: who did what to which request, and when. Written in the caller's transaction,
so an action and its record commit (or roll back) together."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.models import AuditEntry, now


def record(session: Session, actor: str, action: str, request_id: int | None = None, **detail: Any) -> None:
    session.add(AuditEntry(request_id=request_id, actor=actor, action=action, detail=detail or None, at=now()))


def trail(session: Session, request_id: int) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.request_id == request_id).order_by(AuditEntry.id)))

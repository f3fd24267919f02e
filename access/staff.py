"""Staff accounts as the admin area shows them, switching an account off and on, and the trail of
every admin action (the audit log's entries whose actor is an admin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from access.models import OperatorCategory
from workflow import audit
from workflow.claims import actor
from workflow.errors import Invalid, NotFound
from workflow.models import AuditEntry, User, utc


@dataclass(frozen=True)
class StaffRow:
    id: int
    name: str
    role: str
    active: bool
    categories: list[str]
    created_at: datetime


def staff(sessions: sessionmaker) -> list[StaffRow]:
    """Every staff account by name, with the categories an operator knows."""
    with sessions() as session:
        known: dict[int, list[str]] = {}
        for row in session.execute(select(OperatorCategory.user_id, OperatorCategory.category)):
            known.setdefault(row.user_id, []).append(row.category)
        return [
            StaffRow(u.id, u.name, u.role, u.active, sorted(known.get(u.id, [])), utc(u.created_at))  # type: ignore[arg-type]
            for u in session.scalars(select(User).order_by(User.name))
        ]


def set_active(sessions: sessionmaker, user_id: int, active: bool, admin: User) -> str:
    """Switch an account off (it can no longer sign in; its sessions stop working) or on again."""
    if user_id == admin.id and not active:
        raise Invalid("You cannot switch off your own account.", "Ask another admin.")
    with sessions() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("There is no such staff account.")
        user.active = active
        audit.record(
            session, actor(admin), "access.staff.enabled" if active else "access.staff.disabled", user=user.name
        )
        session.commit()
        return user.name


def admin_trail(sessions: sessionmaker, limit: int = 200) -> list[AuditEntry]:
    """The newest admin actions first: everything an admin account did, through any page or command."""
    with sessions() as session:
        rows = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.actor.like("admin:%")).order_by(AuditEntry.id.desc()).limit(limit)
            )
        )
        session.expunge_all()
        return rows

"""Staff sign-in sessions kept in the database: random cookie token, stored hashed, fresh at every
sign-in, deleted at sign-out, expiring on their own."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from workflow import audit
from workflow.models import StaffSession, User, now

COOKIE = "vitrine_staff"
LIFETIME = timedelta(hours=12)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(sessions: sessionmaker, user: User) -> str:
    """A new session for `user`; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    moment = now()
    with sessions() as session:
        session.execute(delete(StaffSession).where(StaffSession.expires_at < moment))
        session.add(StaffSession(token_sha256=_hash(token), user_id=user.id, expires_at=moment + LIFETIME))
        audit.record(session, f"{user.role}:{user.name}", "staff.signed_in")
        session.commit()
    return token


def user_of(sessions: sessionmaker, token: str | None) -> User | None:
    if not token or len(token) > 100:
        return None
    with sessions() as session:
        row = session.execute(
            select(User)
            .join(StaffSession, StaffSession.user_id == User.id)
            .where(StaffSession.token_sha256 == _hash(token), StaffSession.expires_at > now(), User.active.is_(True))
        ).scalar_one_or_none()
        return row


def close_session(sessions: sessionmaker, token: str | None) -> None:
    if not token:
        return
    with sessions() as session:
        session.execute(delete(StaffSession).where(StaffSession.token_sha256 == _hash(token)))
        session.commit()

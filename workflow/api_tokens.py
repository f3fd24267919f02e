"""Bearer tokens for the staff and vendor JSON API: a staff sign-in session of its own kind.

A token is a row of `staff_sessions` like a browser's cookie session (random, only its sha256
stored, expiring on its own), so everything that ends sessions ends tokens too: signing the token
out, `vitrine users sessions revoke NAME`, disabling the account, a new password. No table of its
own is needed. Tokens carry a recognisable prefix (`vtk_`) so secret scanners and people can tell
one from a cookie value, and the API accepts only tokens with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import sessionmaker

from workflow import audit, staff_sessions
from workflow.models import StaffSession, User, now

PREFIX = "vtk_"
#: A working day, like the browser's session: a program asks again with the password, and a
#: leaked token is worth little the next morning.
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


def issue(sessions: sessionmaker, user: User) -> IssuedToken:
    """A new API token for `user` (whose password, and code if enrolled, were checked); audited."""
    token = PREFIX + secrets.token_urlsafe(32)
    moment = now()
    expires = moment + LIFETIME
    with sessions() as session:
        session.execute(delete(StaffSession).where(StaffSession.expires_at < moment))
        session.add(StaffSession(token_sha256=_hash(token), user_id=user.id, expires_at=expires))
        audit.record(session, f"{user.role}:{user.name}", "staff.api_token_issued")
        session.commit()
    return IssuedToken(token, expires)


def user_of(sessions: sessionmaker, token: str | None) -> User | None:
    """The active user behind a live API token, or None (wrong kind, unknown, expired, revoked, disabled)."""
    if not token or not token.startswith(PREFIX):
        return None
    return staff_sessions.user_of(sessions, token)


def revoke(sessions: sessionmaker, token: str) -> None:
    """End this one token (the program signs out); other tokens and sessions stay."""
    staff_sessions.close_session(sessions, token)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

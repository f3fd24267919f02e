"""One-time links to set a staff password: random tokens stored as sha256, single use, expiring.

Approved applicants get one in their e-mail, so no password ever travels by mail or is chosen by an
admin. The new password goes through the staff password policy (`workflow.passwords`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from access.errors import FieldInvalid
from access.models import PasswordLink
from workflow import audit
from workflow.errors import NotFound
from workflow.models import User, now, utc
from workflow.passwords import WeakPassword, check_password

LIFETIME = timedelta(hours=72)
_hasher = PasswordHasher()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user_id: int, lifetime: timedelta = LIFETIME) -> str:
    """A new link token for `user_id`, in the caller's transaction; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    session.add(PasswordLink(user_id=user_id, token_sha256=_digest(token), expires_at=now() + lifetime))
    return token


def _live(session: Session, token: str) -> tuple[PasswordLink, User]:
    link = session.scalar(select(PasswordLink).where(PasswordLink.token_sha256 == _digest(token or "")))
    if link is None or len(token) > 100:
        raise NotFound("This link to set a password is not valid.", "Ask an admin for a new one.")
    if link.used_at is not None:
        raise NotFound("This link was already used to set a password.", "Sign in, or ask an admin for a new link.")
    if utc(link.expires_at) <= now():  # type: ignore[operator]
        raise NotFound("This link to set a password has expired.", "Ask an admin for a new one.")
    user = session.get(User, link.user_id)
    assert user is not None
    return link, user


def holder(sessions: sessionmaker, token: str) -> str:
    """The account name a live link sets the password of (NotFound when used, expired or unknown)."""
    with sessions() as session:
        return _live(session, token)[1].name


def redeem(sessions: sessionmaker, token: str, password: str, repeated: str) -> str:
    """Set the password through the link, once; the account name."""
    with sessions() as session:
        link, user = _live(session, token)
        if password != repeated:
            raise FieldInvalid("password", "The two passwords are not the same.")
        try:
            check_password(password, name=user.name)
        except WeakPassword as exc:
            raise FieldInvalid("password", str(exc)) from None
        used = session.execute(
            update(PasswordLink).where(PasswordLink.id == link.id, PasswordLink.used_at.is_(None)).values(used_at=now())
        ).rowcount
        if not used:
            raise NotFound("This link was already used to set a password.", "Sign in, or ask an admin for a new link.")
        user.password_hash = _hasher.hash(password)
        audit.record(session, f"{user.role}:{user.name}", "staff.password_set", via="link")
        session.commit()
        return user.name

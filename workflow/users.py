"""Staff accounts: argon2 password hashes, roles operator / admin / vendor; the controls an admin has
over them (disable, reset the password, end their sessions). Every password set here passes
`workflow.passwords.check_password`."""

from __future__ import annotations

import contextlib
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from workflow import audit
from workflow.models import StaffSession, User
from workflow.passwords import WeakPassword, check_password

ROLES = ("operator", "admin", "vendor")
_hasher = PasswordHasher()
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
#: Verifying against this keeps a login for an unknown name as slow as one for a known name.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


class UserError(ValueError):
    """A refused account change; the message says why."""


def add_user(sessions: sessionmaker, name: str, role: str, password: str, vendor_id: int | None = None) -> User:
    if not _NAME.match(name):
        raise UserError("A user name is 1-100 letters, digits or . _ @ - (no spaces).")
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    _check(password, name)
    with sessions() as session:
        if session.scalar(select(User).where(User.name == name)) is not None:
            raise UserError(f"A user named {name!r} already exists.")
        user = User(name=name, role=role, password_hash=_hasher.hash(password), vendor_id=vendor_id)
        session.add(user)
        session.flush()
        audit.record(session, "admin-cli", "user.add", name=name, role=role)
        session.commit()
        return user


def _check(password: str, name: str) -> None:
    try:
        check_password(password, name=name)
    except WeakPassword as exc:
        raise UserError(str(exc)) from None


def _named(session, name: str) -> User:  # type: ignore[no-untyped-def]
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UserError(f"There is no user named {name!r}.")
    return user


def revoke_sessions(sessions: sessionmaker, name: str, who: str = "admin-cli") -> int:
    """End every sign-in session of `name` at once (a lost laptop, a leaked cookie); how many ended."""
    with sessions() as session:
        user = _named(session, name)
        ended = session.execute(delete(StaffSession).where(StaffSession.user_id == user.id)).rowcount or 0
        audit.record(session, who, "user.sessions_revoked", name=name, sessions=ended)
        session.commit()
        return ended


def set_active(sessions: sessionmaker, name: str, active: bool, who: str = "admin-cli") -> None:
    """Disable (or enable again) an account; disabling also ends its sessions, so it is out at once."""
    with sessions() as session:
        user = _named(session, name)
        user.active = active
        if not active:
            session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        audit.record(session, who, "user.enabled" if active else "user.disabled", name=name)
        session.commit()


def reset_password(sessions: sessionmaker, name: str, password: str, who: str = "admin-cli") -> None:
    """A new password (under the policy); every session of the account ends, since the old password
    may be what was compromised."""
    _check(password, name)
    with sessions() as session:
        user = _named(session, name)
        user.password_hash = _hasher.hash(password)
        session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        audit.record(session, who, "user.password_reset", name=name)
        session.commit()


def authenticate(sessions: sessionmaker, name: str, password: str) -> User | None:
    """The user, if the name and password match an active account; None otherwise."""
    with sessions() as session:
        user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
        if user is None:
            with contextlib.suppress(VerificationError):
                _hasher.verify(_DUMMY_HASH, password)
            return None
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            session.commit()
        return user

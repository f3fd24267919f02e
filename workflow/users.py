"""Staff accounts: argon2 password hashes, roles operator / admin / vendor."""

from __future__ import annotations

import contextlib
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from workflow import audit
from workflow.models import User

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
    if len(password) < 8:
        raise UserError("The password must be at least 8 characters long.")
    with sessions() as session:
        if session.scalar(select(User).where(User.name == name)) is not None:
            raise UserError(f"A user named {name!r} already exists.")
        user = User(name=name, role=role, password_hash=_hasher.hash(password), vendor_id=vendor_id)
        session.add(user)
        session.flush()
        audit.record(session, "admin-cli", "user.add", name=name, role=role)
        session.commit()
        return user


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

"""Vendor API keys: a back office's program calls the vendor JSON API without anyone's password.

A key is random (`vvk_` + 32 bytes), shown once when made, and only its sha256 is kept (like the
staff tokens of `workflow.api_tokens`), so a database leak gives no working key. A key acts as the
vendor user who created it: the bearer guard puts that user in scope, so every vendor route scopes
by `user.vendor_id` as for a signed-in person, and switching the creator off stops their keys too.
Revoked keys stay listed (who made it, when it was last used) but never work again. The last-used
time is written at most once a minute, so a program polling every second costs no write per call.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from access.models import VendorApiKey
from access.vendor_team import vendor_of
from workflow import audit
from workflow.claims import actor
from workflow.errors import Invalid, NotFound
from workflow.models import User, now, utc

PREFIX = "vvk_"
#: Shown in lists so people can tell keys apart; far too short to guess the rest from.
SHOWN = 12
#: How stale the stored last-used time may get before a use writes it again.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    id: int
    name: str
    secret: str
    prefix: str


@dataclass(frozen=True)
class KeyRow:
    id: int
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def is_key(token: str | None) -> bool:
    """Whether a bearer credential is a vendor API key (by its prefix)."""
    return bool(token) and token.startswith(PREFIX)  # type: ignore[union-attr]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(sessions: sessionmaker, user: User, name: str) -> NewKey:
    """A new key of the user's vendor, acting as `user`; the secret is returned here only."""
    vendor_id = vendor_of(user)
    label = " ".join((name or "").split())
    if not label or len(label) > 100:
        raise Invalid("Please name the key (up to 100 characters), e.g. the program that will use it.")
    secret = PREFIX + secrets.token_urlsafe(32)
    with sessions() as session:
        key = VendorApiKey(
            vendor_id=vendor_id,
            name=label,
            prefix=secret[:SHOWN],
            key_sha256=_digest(secret),
            created_by_id=user.id,
            created_at=now(),
        )
        session.add(key)
        session.flush()
        audit.record(session, actor(user), "vendor.api_key_created", key_id=key.id, name=label)
        session.commit()
        return NewKey(key.id, label, secret, key.prefix)


def keys(sessions: sessionmaker, user: User) -> list[KeyRow]:
    """The keys of the user's vendor, live ones first, newest first."""
    vendor_id = vendor_of(user)
    with sessions() as session:
        rows = session.execute(
            select(VendorApiKey, User.name)
            .join(User, User.id == VendorApiKey.created_by_id)
            .where(VendorApiKey.vendor_id == vendor_id)
            .order_by(VendorApiKey.revoked_at.is_not(None), VendorApiKey.id.desc())
        ).all()
        return [
            KeyRow(k.id, k.name, k.prefix, creator, k.created_at, k.last_used_at, k.revoked_at) for k, creator in rows
        ]


def revoke(sessions: sessionmaker, user: User, key_id: int) -> str:
    """Stop a key of the user's vendor for good; its name. Another vendor's key is "not found"."""
    vendor_id = vendor_of(user)
    with sessions() as session:
        key = session.get(VendorApiKey, key_id)
        if key is None or key.vendor_id != vendor_id:
            raise NotFound("There is no such API key.")
        if key.revoked_at is None:
            key.revoked_at, key.revoked_by_id = now(), user.id
            audit.record(session, actor(user), "vendor.api_key_revoked", key_id=key.id, name=key.name)
            session.commit()
        return key.name


def user_of(sessions: sessionmaker, secret: str | None) -> User | None:
    """The vendor user a live key acts as, or None (not a key, unknown, revoked, creator switched off
    or moved to another vendor). Touches the key's last-used time at most once a minute."""
    if not is_key(secret) or len(secret or "") > 100:
        return None
    with sessions() as session:
        found = session.execute(
            select(VendorApiKey, User)
            .join(User, User.id == VendorApiKey.created_by_id)
            .where(VendorApiKey.key_sha256 == _digest(secret or ""), VendorApiKey.revoked_at.is_(None))
        ).first()
        if found is None:
            return None
        key, user = found
        if not user.active or user.role != "vendor" or user.vendor_id != key.vendor_id:
            return None
        moment = now()
        if key.last_used_at is None or utc(key.last_used_at) <= moment - TOUCH_EVERY:  # type: ignore[operator]
            key.last_used_at = moment
            session.commit()
            session.refresh(user)
        session.expunge(user)
        return user

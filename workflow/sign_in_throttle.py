"""Per-account sign-in lockout with back-off, kept in the database.

Wrong passwords for one account name are counted in `sign_in_throttle`; once they reach the limit the
name is locked for a while, and every further failure doubles the lock (up to an hour). A right
password while locked is refused too, so guessing gains nothing; a right password after the lock
clears the count. The name is the key whether or not such an account exists, so the answers never
tell which names are real.

Why the database and not memory: several app processes may serve one PostgreSQL (behind a proxy);
a counter in each process's memory would give an attacker one budget per process and forget
everything at a restart. The counter moves with one UPDATE, so concurrent failures all count.
Every failure and every lock is written to the audit trail (`sign_in.failed`, `sign_in.locked`).

The same table counts failures per client address (`client:<address>`) over every name, so one
address guessing at many accounts is locked too; failures an hour old, outside a lock, are forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Integer, String, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from catalog.db import Base
from workflow import audit
from workflow.models import now, utc

MAX_LOCK_S = 3600.0
FORGET_AFTER = timedelta(hours=1)  # failures this old, outside a lock, no longer count
CLIENT_PREFIX = "client:"  # rows keyed by an address rather than an account name


class SignInThrottle(Base):
    """Failed sign-ins per account name (lower-cased), and until when the name is locked."""

    __tablename__ = "sign_in_throttle"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class Policy:
    """How many failures lock an account name, and for how long at first."""

    failures: int = 5
    lockout_s: float = 60.0

    def lock_for(self, failures: int) -> float:
        """The lock after `failures` wrong passwords: none below the limit, then doubling, at most an hour."""
        if self.failures <= 0 or failures < self.failures:
            return 0.0
        return min(MAX_LOCK_S, self.lockout_s * 2 ** min(failures - self.failures, 16))


def _key(name: str) -> str:
    return name.strip().lower()[:200]


def client_key(client: str) -> str:
    """The row counting one client address's failures over every account name."""
    return f"{CLIENT_PREFIX}{client}"[:200]


def _locked_seconds(session: Session, key: str, moment: datetime) -> float:
    row = session.get(SignInThrottle, key)
    until = utc(row.locked_until) if row is not None else None
    return max(0.0, (until - moment).total_seconds()) if until is not None else 0.0


def locked_for(sessions: sessionmaker, name: str, client: str = "") -> float:
    """Seconds before this account name (or, with `client`, this address) may try again (0: now)."""
    moment = now()
    with sessions() as session:
        seconds = _locked_seconds(session, _key(name), moment)
        if client:
            seconds = max(seconds, _locked_seconds(session, client_key(client), moment))
    return seconds


def record_failure(
    sessions: sessionmaker, name: str, policy: Policy, client: str = "", client_policy: Policy | None = None
) -> float:
    """Count a wrong password (or code) for `name` and, with `client_policy`, for the client's address;
    audited; the longer lock either now has, in seconds."""
    key = _key(name)
    moment = now()
    with sessions() as session:
        failures = _count_failure(session, key, moment)
        locks = {key: (policy.lock_for(failures), failures)}
        if client and client_policy is not None:
            from_client = _count_failure(session, client_key(client), moment)
            locks[client_key(client)] = (client_policy.lock_for(from_client), from_client)
        audit.record(session, f"sign-in:{key}", "sign_in.failed", None, name=key, client=client, failures=failures)
        for locked_key, (lock, count) in locks.items():
            if not lock:
                continue
            session.execute(
                update(SignInThrottle)
                .where(SignInThrottle.name == locked_key)
                .values(locked_until=moment + timedelta(seconds=lock))
            )
            audit.record(
                session, "system", "sign_in.locked", None, name=locked_key, seconds=round(lock), failures=count
            )
        session.commit()
    return max(lock for lock, _ in locks.values())


def _count_failure(session: Session, key: str, moment: datetime) -> int:
    """One more failure for `key`, atomically (a row is made for the first one); the new count.
    Failures more than `FORGET_AFTER` old, outside a lock, are forgotten first."""
    stale = moment - FORGET_AFTER
    session.execute(
        update(SignInThrottle)
        .where(
            SignInThrottle.name == key,
            SignInThrottle.last_failure_at < stale,
            or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until < moment),
        )
        .values(failures=0)
    )
    for _ in range(3):
        moved = session.execute(
            update(SignInThrottle)
            .where(SignInThrottle.name == key)
            .values(failures=SignInThrottle.failures + 1, last_failure_at=moment)
        ).rowcount
        if moved:
            return int(session.scalar(select(SignInThrottle.failures).where(SignInThrottle.name == key)) or 1)
        try:
            with session.begin_nested():
                session.add(SignInThrottle(name=key, failures=1, last_failure_at=moment))
            return 1
        except IntegrityError:  # another process made the row first: count on it
            continue
    raise RuntimeError(f"could not count a failed sign-in for {key!r}")


def record_success(sessions: sessionmaker, name: str) -> None:
    """A right password outside a lock: the account's count starts again (the address's does not, so
    one valid account cannot wash out guesses at others)."""
    with sessions() as session:
        session.execute(delete(SignInThrottle).where(SignInThrottle.name == _key(name)))
        session.commit()


def record_refused(sessions: sessionmaker, name: str, seconds: float, client: str = "") -> None:
    """A try while the name or the address is locked: refused unchecked (the lock does not grow), audited."""
    key = _key(name)
    with sessions() as session:
        detail = {"name": key, "client": client, "locked_s": round(seconds)}
        audit.record(session, f"sign-in:{key}", "sign_in.refused", None, **detail)
        session.commit()

"""TOTP two-factor sign-in (RFC 6238, through `pyotp`): enrolment from the CLI, the code checked at
sign-in, each code accepted once.

A code is valid for its 30-second step and the one either side (phone clocks drift). The step of the
last accepted code is kept on the user and moved forward with a compare-and-set UPDATE, so a code
seen over a shoulder or replayed from a log is refused even within its window, and two sign-ins racing
with the same code cannot both win.
"""

from __future__ import annotations

import time

import pyotp
from sqlalchemy import or_, select, update
from sqlalchemy.orm import sessionmaker

from workflow import audit
from workflow.models import User

ISSUER = "Vitrine"
WINDOW = 1  # steps either side of now that still count


class TotpError(ValueError):
    """A refused enrolment; the message says why."""


def enrol(sessions: sessionmaker, name: str, who: str = "admin-cli") -> tuple[str, str]:
    """A new TOTP secret for `name` (replacing any earlier one); returns (secret, provisioning URI),
    shown once to be scanned into an authenticator app. Codes from an older enrolment stop working."""
    secret = pyotp.random_base32()
    with sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise TotpError(f"There is no user named {name!r}.")
        user.totp_secret = secret
        user.totp_last_step = None
        audit.record(session, who, "user.totp_enrolled", name=name)
        session.commit()
    return secret, pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def remove(sessions: sessionmaker, name: str, who: str = "admin-cli") -> None:
    """Turn two-factor off for `name` (a lost phone); they sign in with the password alone again."""
    with sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            raise TotpError(f"There is no user named {name!r}.")
        user.totp_secret = None
        user.totp_last_step = None
        audit.record(session, who, "user.totp_removed", name=name)
        session.commit()


def _matching_step(secret: str, code: str, moment: float) -> int | None:
    totp = pyotp.TOTP(secret)
    step = int(moment) // totp.interval
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if pyotp.utils.strings_equal(code, totp.generate_otp(candidate)):
            return candidate
    return None


def check_code(sessions: sessionmaker, user_id: int, code: str, moment: float | None = None) -> bool:
    """True when `code` is the user's current code and was not used before (it is then used up)."""
    code = "".join((code or "").split())
    if not code.isdigit() or len(code) != 6:
        return False
    with sessions() as session:
        secret = session.scalar(select(User.totp_secret).where(User.id == user_id))
        if not secret:
            return False
        step = _matching_step(secret, code, time.time() if moment is None else moment)
        if step is None:
            return False
        taken = session.execute(
            update(User)
            .where(User.id == user_id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
        ).rowcount
        session.commit()
        return taken == 1

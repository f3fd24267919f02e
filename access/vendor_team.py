"""A vendor's own team: its users, inviting a colleague, switching one off (or on again).

Vendor users manage their colleagues themselves, so an admin is not needed for every new hire or
leaver. Every action is limited to the acting user's vendor (another vendor's user is "not found",
never "not allowed", so ids reveal nothing), and nobody can switch themselves off (the last way in
would be gone). Switching off ends the colleague's sessions and tokens at once, and the API keys
they created stop working with them (a key acts as its creator).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import delete, select
from sqlalchemy.orm import sessionmaker

from access import password_links
from access.applications import _free_user_name
from access.emails import normalise_email
from catalog.db import Vendor
from mail.outbox import Outbox
from workflow import audit
from workflow.claims import actor
from workflow.errors import Forbidden, Invalid, NotFound
from workflow.models import StaffSession, User

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    active: bool
    created_at: datetime
    is_you: bool


def vendor_of(user: User) -> int:
    """The acting user's vendor id; Forbidden for an account linked to no vendor (an admin)."""
    if user.vendor_id is None:
        raise Forbidden(
            "This account is not linked to a vendor.", "Sign in as a user of the vendor whose team this is."
        )
    return user.vendor_id


def members(sessions: sessionmaker, user: User) -> list[Member]:
    """The users of the acting user's vendor, oldest first."""
    vendor_id = vendor_of(user)
    with sessions() as session:
        rows = session.scalars(select(User).where(User.vendor_id == vendor_id, User.role == "vendor").order_by(User.id))
        return [Member(u.id, u.name, bool(u.active), u.created_at, u.id == user.id) for u in rows]


def invite(sessions: sessionmaker, outbox: Outbox, base: str, user: User, email: str) -> str:
    """A new user of the same vendor with a set-password link e-mailed to `email`; its sign-in name."""
    vendor_id = vendor_of(user)
    address = normalise_email(email)
    with sessions() as session:
        vendor = session.get(Vendor, vendor_id)
        assert vendor is not None
        name = _free_user_name(session, address)
        colleague = User(name=name, role="vendor", password_hash=_hasher.hash(secrets.token_urlsafe(32)))
        colleague.vendor_id = vendor_id
        session.add(colleague)
        session.flush()
        token = password_links.issue(session, colleague.id)
        audit.record(session, actor(user), "vendor.colleague_invited", user=name, vendor=vendor.name)
        context = {
            "inviter": user.name,
            "company": vendor.name,
            "user_name": name,
            "set_password_url": f"{base}/set-password/{token}",
            "hours": int(password_links.LIFETIME.total_seconds() // 3600),
        }
        outbox.send_template(address, "vendor_invitation", context, session=session)
        session.commit()
        return name


def set_active(sessions: sessionmaker, user: User, member_id: int, active: bool) -> str:
    """Switch a colleague off (their sessions end at once) or on again; their name."""
    vendor_id = vendor_of(user)
    if member_id == user.id:
        raise Invalid("You cannot switch yourself off.", "Ask a colleague to do it.")
    with sessions() as session:
        colleague = session.get(User, member_id)
        if colleague is None or colleague.vendor_id != vendor_id or colleague.role != "vendor":
            raise NotFound("There is no such colleague.")
        colleague.active = active
        if not active:
            session.execute(delete(StaffSession).where(StaffSession.user_id == colleague.id))
        audit.record(
            session,
            actor(user),
            "vendor.colleague_enabled" if active else "vendor.colleague_disabled",
            user=colleague.name,
        )
        session.commit()
        return colleague.name

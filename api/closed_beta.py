"""The closed-beta door on request creation: with VITRINE_ACCESS=waitlist, sending a photo request
needs an invitation (its token from the invitation link's cookie, or the API's `invitation` field).
Everything else (search, staff, vendors) stays open."""

from __future__ import annotations

import asyncio

from litestar import Request
from sqlalchemy.orm import sessionmaker

from access import waitlist
from access.errors import InvitationRequired
from workflow.settings import Settings

REFUSAL = (
    "Vitrine is in closed beta: sending a photo request needs an invitation. Join the waitlist at /waitlist "
    "and we e-mail you an invitation when it is your turn."
)


def invitation_of(request: Request) -> str | None:
    return request.cookies.get(waitlist.INVITE_COOKIE)


async def is_invited(settings: Settings, db: sessionmaker, token: str | None) -> bool:
    """Whether requests may be sent: always in open mode, with a live invitation in waitlist mode."""
    if getattr(settings, "access", "open") != "waitlist":
        return True
    return await asyncio.to_thread(waitlist.invitation_valid, db, token)


async def require_invitation(settings: Settings, db: sessionmaker, token: str | None) -> None:
    """`InvitationRequired` (403, saying how to join) unless a request may be sent."""
    if not await is_invited(settings, db, token):
        raise InvitationRequired(REFUSAL)

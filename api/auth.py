"""Who is signing in: the staff member behind the session cookie, and guards that let a role through.

The user is looked up once per request (in a worker thread) and kept in the ASGI scope, where the
guards, the `user` dependency and the page context all find it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from workflow import staff_sessions
from workflow.errors import Forbidden, SignInRequired
from workflow.models import User

USER_KEY = "vitrine_user"
Guard = Callable[[ASGIConnection, BaseRouteHandler], Awaitable[None]]


async def viewer_of(connection: ASGIConnection) -> User | None:
    """The signed-in staff member, or None for a customer or a stranger."""
    if USER_KEY not in connection.scope:
        token = connection.cookies.get(staff_sessions.COOKIE)
        sessions = connection.app.state.sessions
        user = await asyncio.to_thread(staff_sessions.user_of, sessions, token) if token else None
        connection.scope[USER_KEY] = user  # type: ignore[literal-required]
    return connection.scope[USER_KEY]  # type: ignore[literal-required]


def signed_in_as(*roles: str) -> Guard:
    """A guard letting through staff with one of `roles`; others are sent to sign in or refused."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user = await viewer_of(connection)
        if user is None:
            raise SignInRequired("Please sign in to continue.", "Use your operator account.")
        if user.role not in roles:
            raise Forbidden(f"Your account ({user.role}) cannot open this page.", "Sign in with another account.")

    guard.__name__ = f"signed_in_as_{'_or_'.join(roles)}"
    return guard


staff_only = signed_in_as("operator", "admin")
admin_only = signed_in_as("admin")
vendor_staff_only = signed_in_as("vendor", "admin")

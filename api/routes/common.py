"""What every route needs: the shared services, the signed-in user, pages with the common context."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import MediaType, Request
from litestar.response import Template

from api import staff_sessions
from api.models import User


def state(request: Request) -> Any:
    return request.app.state


async def current_user(request: Request) -> User | None:
    """The signed-in staff member (looked up once per request), or None."""
    if "vitrine_user" not in request.scope:
        token = request.cookies.get(staff_sessions.COOKIE)
        request.scope["vitrine_user"] = (
            await asyncio.to_thread(staff_sessions.user_of, state(request).sessions, token) if token else None
        )
    return request.scope["vitrine_user"]


async def require_user(request: Request, *roles: str) -> User:
    from api.app import LoginRequired
    from api.errors import Forbidden

    user = await current_user(request)
    if user is None:
        raise LoginRequired("Please sign in to continue.", "Use your operator account.")
    if roles and user.role not in roles:
        raise Forbidden(f"Your account ({user.role}) cannot open this page.", "Sign in with another account.")
    return user


def flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = {"text": text, "kind": kind}


def request_link(request: Request) -> str:
    """The customer page address with `{token}` left to fill (for e-mails)."""
    return str(request.base_url).rstrip("/") + "/r/{token}"


async def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Template:
    if "user" not in context:
        context["user"] = await current_user(request)
    flashed = request.session.pop("flash", None) if request.scope.get("session") is not None else None
    context.setdefault("flash", flashed)
    context["test_mode"] = state(request).payments.is_test
    return Template(template_name=template, context=context, status_code=status_code, media_type=MediaType.HTML)


def to_thread(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return asyncio.to_thread(fn, *args, **kwargs)

"""What every route needs: the shared services, the signed-in user, pages with the common context."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, unquote

from litestar import MediaType, Request
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from workflow import staff_sessions
from workflow.models import User

NOTICE_COOKIE = "vitrine_notice"


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
    from workflow.errors import Forbidden

    user = await current_user(request)
    if user is None:
        raise LoginRequired("Please sign in to continue.", "Use your operator account.")
    if roles and user.role not in roles:
        raise Forbidden(f"Your account ({user.role}) cannot open this page.", "Sign in with another account.")
    return user


def notice_redirect(request: Request, target: str, text: str) -> Redirect:
    """A redirect that shows `text` once on the next page (a short-lived cookie; nothing stored server-side)."""
    response = Redirect(target, status_code=303)
    response.set_cookie(_notice_cookie(request, quote(text[:300]), 60))
    return response


def _notice_cookie(request: Request, value: str, max_age: int) -> Cookie:
    secure = state(request).settings.secure_cookies
    return Cookie(
        key=NOTICE_COOKIE, value=value, path="/", httponly=True, samesite="lax", secure=secure, max_age=max_age
    )


def request_link(request: Request) -> str:
    """The customer page address with `{token}` left to fill (for e-mails)."""
    return str(request.base_url).rstrip("/") + "/r/{token}"


async def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Template:
    if "user" not in context:
        context["user"] = await current_user(request)
    notice = request.cookies.get(NOTICE_COOKIE)
    context.setdefault("flash", {"text": unquote(notice), "kind": "ok"} if notice else None)
    context["test_mode"] = state(request).payments.is_test
    cookies = [_notice_cookie(request, "", 0)] if notice else []
    return Template(
        template_name=template, context=context, status_code=status_code, media_type=MediaType.HTML, cookies=cookies
    )


def to_thread(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    return asyncio.to_thread(fn, *args, **kwargs)

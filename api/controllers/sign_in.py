"""Staff sign-in and sign-out: a fresh random session token per sign-in, deleted at sign-out."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from api.dependencies import AppSettings, Db, Viewer
from api.forms import SignIn
from api.pages import page
from workflow import staff_sessions, users
from workflow.settings import Settings


def safe_next(target: str | None) -> str:
    """Only a local path may follow sign-in (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/operator"
    return target


def staff_cookie(settings: Settings, value: str, max_age: int | None = None) -> Cookie:
    return Cookie(
        key=staff_sessions.COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=max_age if max_age is not None else int(staff_sessions.LIFETIME.total_seconds()),
    )


class SignInController(Controller):
    include_in_schema = False

    @get("/login", name="login_form")
    async def login_form(self, request: Request, viewer: Viewer, next: FromQuery[str | None] = None) -> Template:
        return page(request, "login.html", user=viewer, next=safe_next(next), error=None)

    @post("/login", name="login")
    async def login(self, request: Request, data: SignIn, db: Db, settings: AppSettings) -> Template | Redirect:
        user = await asyncio.to_thread(users.authenticate, db, data.name.strip(), data.password)
        target = safe_next(data.next)
        if user is None:
            return page(
                request, "login.html", status_code=401, next=target, error="The name or the password is not right."
            )
        token = await asyncio.to_thread(staff_sessions.open_session, db, user)
        response = Redirect("/vendor" if user.role == "vendor" else target, status_code=303)
        response.set_cookie(staff_cookie(settings, token))
        return response

    @post("/logout", name="logout", sync_to_thread=True)
    def logout(self, request: Request, db: Db, settings: AppSettings) -> Redirect:
        staff_sessions.close_session(db, request.cookies.get(staff_sessions.COOKIE))
        response = Redirect("/login", status_code=303)
        response.set_cookie(staff_cookie(settings, "", max_age=0))
        return response

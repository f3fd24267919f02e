"""Staff sign-in and sign-out: a fresh random session token per sign-in, deleted at sign-out."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import sessionmaker

from api.dependencies import AppSettings, Db, Viewer
from api.forms import SignIn
from api.limits import sign_in_failed, sign_in_lock
from api.pages import notice_redirect, page
from workflow import sign_in_throttle, staff_sessions, totp, users
from workflow.models import User
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


NO_TOTP_WARNING = (
    "Your admin account signs in with a password alone. Turn on two-factor sign-in: vitrine users totp {name}"
)


async def second_factor_refusal(user: User, code: str, db: sessionmaker, settings: Settings) -> tuple[int, str] | None:
    """Why a user whose password was right may still not come in (status, message), or None.

    Enrolled accounts need the current TOTP code, each code once. An admin without TOTP is warned
    after signing in, or refused when `settings.require_admin_totp` (VITRINE_REQUIRE_ADMIN_TOTP=1)."""
    if user.totp_secret:
        if await asyncio.to_thread(totp.check_code, db, user.id, code):
            return None
        return 401, "Enter the current 6-digit code from your authenticator app (each code works once)."
    if user.role == "admin" and getattr(settings, "require_admin_totp", False):
        return 403, "Admins must sign in with a two-factor code here; ask another admin to run vitrine users totp."
    return None


class SignInController(Controller):
    include_in_schema = False

    @get("/login", name="login_form")
    async def login_form(self, request: Request, viewer: Viewer, next: FromQuery[str | None] = None) -> Template:
        return page(request, "login.html", user=viewer, next=safe_next(next), error=None)

    @post("/login", name="login")
    async def login(self, request: Request, data: SignIn, db: Db, settings: AppSettings) -> Template | Redirect:
        target = safe_next(data.next)
        locked = await sign_in_lock(request, db, data.name)  # a locked name is refused before any check
        if locked is not None:
            return page(request, "login.html", status_code=429, next=target, error=locked, typed_name=data.name)
        user = await asyncio.to_thread(users.authenticate, db, data.name.strip(), data.password)
        if user is None:
            error = await sign_in_failed(request, db, settings, data.name, "The name or the password is not right.")
            return page(request, "login.html", status_code=401, next=target, error=error)
        refusal = await second_factor_refusal(user, data.code, db, settings)
        if refusal is not None:
            status, error = refusal
            if status == 401:  # a wrong code counts like a wrong password
                error = await sign_in_failed(request, db, settings, data.name, error)
            return page(request, "login.html", status_code=status, next=target, error=error, typed_name=data.name)
        await asyncio.to_thread(sign_in_throttle.record_success, db, data.name)
        token = await asyncio.to_thread(staff_sessions.open_session, db, user)
        destination = "/vendor" if user.role == "vendor" else target
        if user.role == "admin" and not user.totp_secret:
            response = notice_redirect(request, destination, NO_TOTP_WARNING.format(name=user.name))
        else:
            response = Redirect(destination, status_code=303)
        response.set_cookie(staff_cookie(settings, token))
        return response

    @post("/logout", name="logout", sync_to_thread=True)
    def logout(self, request: Request, db: Db, settings: AppSettings) -> Redirect:
        staff_sessions.close_session(db, request.cookies.get(staff_sessions.COOKIE))
        response = Redirect("/login", status_code=303)
        response.set_cookie(staff_cookie(settings, "", max_age=0))
        return response

"""Server-rendered pages: the context every page shares (who is signed in, TEST MODE, a one-time
notice) and redirects that carry a notice to the next page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from markupsafe import Markup

from api.auth import USER_KEY
from api.hosts import public_base
from workflow.lifecycle import label

TEMPLATES = Path(__file__).resolve().parent / "templates"
NOTICE_COOKIE = "vitrine_notice"


def _when(iso: str | None) -> Markup | str:
    """An ISO time from the views as people read it: '27 Nov 2026, 06:53 UTC', inside a <time> element
    that /static/app.js rewrites in the reader's own time zone (without JavaScript, UTC stays)."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return Markup('<time datetime="{}" data-local>{}</time>').format(
        moment.isoformat(), moment.strftime("%d %b %Y, %H:%M UTC")
    )


def _minutes(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{max(0, int(seconds // 60))} min"


def template_environment() -> Environment:
    """Jinja2 with autoescaping on everywhere, and the filters the templates use."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True, default_for_string=True)
    )
    env.filters["status_label"] = label
    env.filters["when"] = _when
    env.filters["minutes"] = _minutes
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Template:
    """A page with the shared context; a notice left by the previous redirect is shown once."""
    context.setdefault("user", request.scope.get(USER_KEY))  # type: ignore[call-overload]
    notice = request.cookies.get(NOTICE_COOKIE)
    context.setdefault("flash", {"text": unquote(notice), "kind": "ok"} if notice else None)
    context["test_mode"] = request.app.state.payments.is_test
    context.setdefault("access_mode", getattr(request.app.state.settings, "access", "open"))  # closed beta
    cookies = [_notice_cookie(request, "", 0)] if notice else []
    return Template(
        template_name=template, context=context, status_code=status_code, media_type=MediaType.HTML, cookies=cookies
    )


def notice_redirect(request: Request, target: str, text: str) -> Redirect:
    """A redirect that shows `text` once on the next page (a short-lived cookie; nothing stored server-side)."""
    response = Redirect(target, status_code=303)
    response.set_cookie(_notice_cookie(request, quote(text[:300]), 60))
    return response


def _notice_cookie(request: Request, value: str, max_age: int) -> Cookie:
    secure = request.app.state.settings.secure_cookies
    return Cookie(
        key=NOTICE_COOKIE, value=value, path="/", httponly=True, samesite="lax", secure=secure, max_age=max_age
    )


def request_link(request: Request) -> str:
    """The customer page address with `{token}` left to fill (for e-mails)."""
    return public_base(request) + "/r/{token}"

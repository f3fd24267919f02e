"""`create_app(settings)`: the Litestar application, its shared services and its error pages.

Pages are server-rendered Jinja2 with autoescaping; every form carries a CSRF token. Staff sign-in
sessions live in the database (a fresh random token per sign-in, deleted at sign-out); nothing is
stored for anonymous visitors. The JSON API
lives under /api (no cookies involved, so it is outside the CSRF check) and is described at /schema.
Errors never show a traceback: services raise typed errors that become a page (or JSON under /api)
saying what happened and what to do.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, MediaType, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from catalog.db import make_engine, session_factory
from catalog.index_watch import watch_index
from vision.errors import ImageRejected
from workflow.errors import ServiceError
from workflow.lifecycle import label
from workflow.outbox import FileOutbox, Outbox
from workflow.payments import PaymentProvider, open_provider
from workflow.settings import Settings

log = logging.getLogger("vitrine.web")
HERE = Path(__file__).resolve().parent


class LoginRequired(ServiceError):
    status_code = 401
    title = "Please sign in"


def _when(iso: str | None) -> str:
    """An ISO time from the views as people read it: '27 Nov 2026, 06:53 UTC'."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %Y, %H:%M UTC")
    except ValueError:
        return iso


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["status_label"] = label
    env.filters["when"] = _when
    env.filters["minutes"] = lambda seconds: (
        f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
        if seconds >= 3600
        else f"{max(0, int(seconds // 60))} min"
    )
    return env


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _error_page(request: Request, status: int, title: str, message: str, hint: str) -> Response:
    if _wants_json(request):
        body = {"error": title, "message": message, "hint": hint, "status_code": status, "detail": message}
        return Response(body, status_code=status)
    referer = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    back = "/"
    if host and f"//{host}/" in referer:
        back = "/" + referer.split(f"//{host}/", 1)[1]
    return Template(
        template_name="error.html",
        context={
            "status": status,
            "title": title,
            "message": message,
            "hint": hint,
            "back": back,
            "test_mode": request.app.state.payments.is_test,
            "user": None,
        },
        status_code=status,
        media_type=MediaType.HTML,
    )


def _service_error(request: Request, exc: ServiceError) -> Response:
    if isinstance(exc, LoginRequired) and not _wants_json(request):
        return Redirect(f"/login?next={request.url.path}", status_code=303)
    return _error_page(request, exc.status_code, exc.title, exc.message, exc.hint)


def _image_rejected(request: Request, exc: ImageRejected) -> Response:
    status = 413 if "too large" in str(exc) else 400
    return _error_page(
        request, status, "This photo cannot be used", str(exc), "Nothing was saved. Please choose another photo."
    )


_HTTP_HINTS = {
    400: ("The request was not understood", "Check the form and try again."),
    403: (
        "This form has expired or was not sent by this site",
        "Reload the page and submit again (your browser must accept cookies from this site).",
    ),
    404: ("Page not found", "Check the address, or start from the home page."),
    405: ("That action is not available here", "Use the buttons on the page."),
    413: (
        "The upload is too large",
        "Nothing was saved. Please send a smaller photo (most phone photos are well under the limit).",
    ),
}


def _http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    title, hint = _HTTP_HINTS.get(status, ("That did not work", "Go back and try again."))
    generic = status in (403, 404, 405) or not exc.detail or exc.detail == str(status)
    message = title + "." if generic else exc.detail
    problems = getattr(exc, "extra", None)
    if status == 400 and isinstance(problems, list) and problems:
        message = "; ".join(
            f"{p.get('key', 'field')}: {p.get('message', 'invalid')}" for p in problems if isinstance(p, dict)
        )
    if status == 413:
        limit = request.app.state.settings.max_upload_bytes
        message = f"The upload is larger than the limit of {limit / 1e6:.0f} MB."
    if status == 403 and "CSRF" in (exc.detail or ""):
        message = "The security token of this form is missing or out of date."
    if status >= 500:
        log.error("HTTP %s on %s: %s", status, request.url.path, exc.detail)
        return _error_page(
            request,
            status,
            "Something went wrong on our side",
            "The server could not finish this.",
            "Please try again in a minute.",
        )
    return _error_page(request, status, title, message, hint)


def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error_page(
        request,
        500,
        "Something went wrong on our side",
        "The server hit an unexpected problem and nothing was changed by it.",
        "Please try again in a minute. If it keeps happening, contact support.",
    )


SECURITY_HEADERS = {
    # Only this site's own files; no inline scripts, no framing, forms post only here.
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    # The request page's address is the customer's key: never send it to another site.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


async def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(
    settings: Settings,
    search=None,  # type: ignore[no-untyped-def]
    payments: PaymentProvider | None = None,
    outbox: Outbox | None = None,
) -> Litestar:
    """The app over `settings.workspace`. `search`, `payments` and `outbox` may be given (tests share one)."""
    from api.routes.api_json import json_routes
    from api.routes.customer import customer_routes
    from api.routes.operator import operator_routes
    from api.routes.search import search_routes
    from api.routes.vendor import vendor_routes

    engine = make_engine(settings.workspace.database_url)
    sessions = session_factory(engine)
    owns_search = search is None
    if search is None:
        from catalog.search_service import SearchService

        search = SearchService(
            settings.workspace,
            sessions,
            settings.model,
            settings.backend,  # type: ignore[arg-type]
            window_ms=settings.search_window_ms,
            max_batch=settings.search_max_batch,
        )
    payments = payments or open_provider(settings.payment_provider)
    outbox = outbox or FileOutbox(settings.outbox_dir)
    secret = settings.secret_key.encode()

    tasks: list[asyncio.Task] = []

    def _startup() -> None:
        if settings.index_refresh_s > 0 and hasattr(search, "refresh_index"):
            tasks.append(asyncio.get_running_loop().create_task(watch_index(search, settings.index_refresh_s)))

    def _shutdown() -> None:
        for task in tasks:
            task.cancel()
        if owns_search:
            search.close()
        engine.dispose()

    state = State(
        {
            "settings": settings,
            "engine": engine,
            "sessions": sessions,
            "search": search,
            "payments": payments,
            "outbox": outbox,
        }
    )
    return Litestar(
        route_handlers=[
            *customer_routes,
            *operator_routes,
            *json_routes,
            *search_routes,
            *vendor_routes,
            create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False),
        ],
        state=state,
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(_environment())),
        csrf_config=CSRFConfig(
            secret=hashlib.sha256(b"csrf:" + secret).hexdigest(),
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            exclude=["/api/", "/schema"],
        ),
        exception_handlers={
            ServiceError: _service_error,
            ImageRejected: _image_rejected,
            HTTPException: _http_error,
            Exception: _crash,
        },
        openapi_config=OpenAPIConfig(
            title="Vitrine",
            version="0.1.0",
            path="/schema",
            # The HTML viewers load their scripts from a CDN, blank on an offline machine: serve the
            # document itself at /schema (JSON) and /schema/openapi.yaml.
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        ),
        request_max_body_size=settings.max_upload_bytes + 1_000_000,
        after_request=_security_headers,
        on_startup=[_startup],
        on_shutdown=[_shutdown],
        debug=False,
    )


def create_app_from_env() -> Litestar:
    """The full app configured from the environment: for `uvicorn --factory` and `vitrine bench serve --app`."""
    return create_app(Settings.from_env())

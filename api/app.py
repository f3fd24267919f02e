"""`create_app(settings)`: the Litestar application, its shared services and its error pages.

Pages are server-rendered Jinja2 with autoescaping; every form carries a CSRF token. Staff sign-in
sessions live in the database (a fresh random token per sign-in, deleted at sign-out); nothing is
stored for anonymous visitors. The JSON API lives under /api (no cookies involved, so it is outside
the CSRF check) and is described at /schema. Errors never show a traceback: the workflow raises
typed errors that `api.errors` turns into a page (or JSON under /api) saying what happened and what
to do.

The services are made here, before the app exists, so a missing model or a database that needs
`vitrine db upgrade` stops `vitrine serve` with that message instead of failing the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path

from litestar import Litestar, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from api.controllers.customer import CustomerController
from api.controllers.docs import DocsController
from api.controllers.health import HealthController
from api.controllers.images import ImagesController
from api.controllers.operator import OperatorController
from api.controllers.requests_api import RequestsApiController
from api.controllers.search import SearchController
from api.controllers.sign_in import SignInController
from api.controllers.vendor import VendorController
from api.dependencies import DEPENDENCIES
from api.errors import EXCEPTION_HANDLERS
from api.pages import template_environment
from catalog.db import make_engine, session_factory
from catalog.db_check import HealthProbe
from catalog.index_watch import watch_index
from catalog.search_service import SearchService
from mail.outbox import FileOutbox, Outbox
from vision.decode import DecodeLimits
from workflow.payment_saga import reconcile_every
from workflow.payments import PaymentProvider, open_provider
from workflow.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"

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


def _version() -> str:
    """The installed release, as the OpenAPI document states it."""
    try:
        return metadata.version("vitrine")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


async def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(
    settings: Settings,
    search: SearchService | None = None,
    payments: PaymentProvider | None = None,
    outbox: Outbox | None = None,
) -> Litestar:
    """The app over `settings.workspace`. `search`, `payments` and `outbox` may be given (tests share one)."""
    engine = make_engine(settings.workspace.database_url)
    sessions = session_factory(engine)
    owns_search = search is None
    if search is None:
        search = SearchService(
            settings.workspace,
            sessions,
            settings.model,
            settings.backend,  # type: ignore[arg-type]
            window_ms=settings.search_window_ms,
            max_batch=settings.search_max_batch,
            limits=DecodeLimits(settings.max_upload_bytes, settings.max_upload_pixels),
        )

    @contextlib.asynccontextmanager
    async def reconcile_payments(app: Litestar) -> AsyncIterator[None]:
        """Settle what a crash or an outage left of the payments at start-up, then periodically."""
        task = asyncio.get_running_loop().create_task(
            reconcile_every(
                app.state.sessions,
                app.state.payments,
                settings.payment_grace_s,
                settings.payment_reconcile_s,
                app.state.outbox,
            )
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def keep_index_current(app: Litestar) -> AsyncIterator[None]:
        """While serving, reopen the catalog index when another process has ingested; then close up."""
        task = None
        if settings.index_refresh_s > 0 and hasattr(app.state.search, "refresh_index"):
            task = asyncio.get_running_loop().create_task(watch_index(app.state.search, settings.index_refresh_s))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            if owns_search:
                app.state.search.close()
            engine.dispose()

    state = State(
        {
            "settings": settings,
            "engine": engine,
            "sessions": sessions,
            "search": search,
            "health": HealthProbe(engine),
            "payments": payments or open_provider(settings.payment_provider, settings.workspace.home),
            "outbox": outbox or FileOutbox(settings.outbox_dir),
        }
    )
    secret = settings.secret_key.encode()
    return Litestar(
        route_handlers=[
            CustomerController,
            ImagesController,
            SignInController,
            OperatorController,
            VendorController,
            RequestsApiController,
            HealthController,
            SearchController,
            DocsController,
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
        ],
        dependencies=DEPENDENCIES,
        state=state,
        lifespan=[keep_index_current, reconcile_payments],
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(template_environment())),
        csrf_config=CSRFConfig(
            secret=hashlib.sha256(b"csrf:" + secret).hexdigest(),
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            exclude=["/api/", "/schema"],
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Vitrine",
            version=_version(),
            path="/schema",
            # Litestar's HTML viewers load their scripts from a CDN, blank on an offline machine: the
            # document is served at /schema (JSON) and /schema/openapi.yaml, and read at /docs
            # (api.controllers.docs: Swagger UI from an installed package).
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        ),
        request_max_body_size=settings.max_upload_bytes + 1_000_000,
        after_request=_security_headers,
        debug=False,
    )


def create_app_from_env() -> Litestar:
    """The full app configured from the environment: for `uvicorn --factory` and `vitrine bench serve --app`."""
    return create_app(Settings.from_env())

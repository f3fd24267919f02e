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
import logging
from collections.abc import AsyncIterator, Coroutine
from importlib import metadata
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.orm import sessionmaker

from api.allow_header import allow_every_method
from api.bearer import COMPONENTS as BEARER_COMPONENTS
from api.controllers.admin import AdminController
from api.controllers.applications import ApplicationPagesController, ApplicationsApiController
from api.controllers.customer import CustomerController
from api.controllers.docs import DocsController
from api.controllers.health import HealthController
from api.controllers.images import ImagesController
from api.controllers.mail import MailController
from api.controllers.nearby import NearbyController
from api.controllers.operator import OperatorController
from api.controllers.orders import VendorOrdersController
from api.controllers.rates import RatesController
from api.controllers.requests_api import RequestsApiController
from api.controllers.search import SearchController
from api.controllers.sign_in import SignInController
from api.controllers.staff_api import StaffApiController, StaffTokenController
from api.controllers.vendor import VendorController
from api.controllers.vendor_accounts import (
    AdminVendorApplicationsController,
    VendorApplicationPagesController,
    VendorApplicationsApiController,
    VendorKeysApiController,
    VendorTeamController,
)
from api.controllers.vendor_catalogs import VendorCatalogsApiController, VendorCatalogsPagesController
from api.controllers.vendor_outbox import VendorOutboxApiController, VendorOutboxPagesController
from api.controllers.vendor_products import VendorProductsApiController
from api.controllers.vendor_stores import VendorStoresApiController, VendorStoresPagesController
from api.controllers.waitlist import WaitlistApiController, WaitlistPagesController
from api.dependencies import DEPENDENCIES
from api.errors import EXCEPTION_HANDLERS
from api.hosts import AllowedHostsMiddleware
from api.limits import MULTIPART_PARTS, nested_too_deep
from api.metrics import PROMETHEUS, MetricsController
from api.pages import template_environment
from api.rate_limits import rate_limit_middleware
from api.request_id import RequestIdMiddleware
from api.response_headers import response_headers
from api.slow_clients import BodyTimeoutMiddleware
from catalog.db import make_engine, session_factory
from catalog.db_check import HealthProbe
from catalog.index_watch import watch_index
from catalog.leftovers import clean_leftovers
from catalog.search_service import SearchService
from catalog.workspace import Workspace
from catalog_ingest.jobs import JobRunner
from catalog_ingest.product_edits import repair_visibility, sinks_of
from mail.delivery import transport_for
from mail.durable import DatabaseOutbox
from mail.outbox import Outbox
from mail.sender import Sender, delivering
from mail.settings import public_url
from vision.decode import DecodeLimits
from vision.embedder import open_embedder
from workflow.payment_saga import reconcile_every
from workflow.payments import PaymentProvider, open_provider
from workflow.settings import Settings
from workflow.sweeper import sweep_every

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
    # No page needs the browser's powerful features; the upload form's camera capture is the file
    # picker's, not getUserMedia, so the camera is off too. Geolocation only for this site's own pages
    # ("Use my location" on the request form and page, asked only when pressed), never for a frame.
    "permissions-policy": "camera=(), microphone=(), geolocation=(self), payment=(), usb=(), serial=()",
}


def _version() -> str:
    """The installed release, as the OpenAPI document states it."""
    try:
        return metadata.version("vitrine")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


@contextlib.asynccontextmanager
async def _in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `work` as a task while the app serves; cancel it and wait for it at shutdown."""
    task = asyncio.get_running_loop().create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


_products_log = logging.getLogger("vitrine.products")


def _repair_product_visibility(workspace: Workspace, sessions: sessionmaker, search: SearchService | None) -> None:
    """Deactivated products' vectors back in line with their flags after a crash mid-edit
    (catalog_ingest.product_edits); logged, never fatal: serving goes on either way."""
    try:
        repaired = repair_visibility(sessions, sinks_of(workspace, search))
    except Exception:
        _products_log.exception("could not check deactivated products' vectors")
        return
    if any(repaired.values()):
        _products_log.warning("products' vectors put back in line with their flags: %s", repaired)


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
        work = reconcile_every(
            app.state.sessions,
            app.state.payments,
            settings.payment_grace_s,
            settings.payment_reconcile_s,
            app.state.outbox,
        )
        async with _in_background(work):
            yield

    @contextlib.asynccontextmanager
    async def repair_products(app: Litestar) -> AsyncIterator[None]:
        """Check deactivated products' vectors once at start, in the background: serving does not wait."""
        work = asyncio.to_thread(_repair_product_visibility, settings.workspace, sessions, app.state.search)
        async with _in_background(work):
            yield

    @contextlib.asynccontextmanager
    async def apply_time_limits(app: Litestar) -> AsyncIterator[None]:
        """Expire claims, offers, unclaimed requests and card holds in the background (workflow.sweeper)."""
        async with _in_background(sweep_every(app.state.sessions, app.state.payments, settings)):
            yield

    @contextlib.asynccontextmanager
    async def deliver_mail(app: Litestar) -> AsyncIterator[None]:
        """Deliver the durable outbox while serving, woken by each new message (SMTP or .eml files)."""
        if not isinstance(app.state.outbox, DatabaseOutbox):  # an outbox given by a test delivers itself
            yield
            return
        transport = transport_for(settings.mail, settings.outbox_dir)
        async with delivering(app.state.outbox, Sender(app.state.sessions, settings.mail, transport)):
            yield

    @contextlib.asynccontextmanager
    async def run_ingest_jobs(app: Litestar) -> AsyncIterator[None]:
        """Work the catalog upload queue in the background (catalog_ingest.jobs); stop it at shutdown,
        where a job in the middle stops after its batch and is queued again."""
        runner = None
        if settings.ingest_workers > 0:
            runner = JobRunner(
                app.state.sessions,
                settings.workspace,
                lambda: open_embedder(settings.model, settings.backend),  # type: ignore[arg-type]
                workers=settings.ingest_workers,
            ).start()
        app.state.ingest_jobs = runner
        try:
            yield
        finally:
            if runner is not None:
                await asyncio.to_thread(runner.stop)

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
            "outbox": outbox
            or DatabaseOutbox(
                sessions,
                secret=settings.secret_key,
                base_url=public_url(settings.public_url),
                sender=settings.mail.sender,
                staff_address=settings.mail.staff_address,
            ),
        }
    )
    secret = settings.secret_key.encode()
    return Litestar(
        route_handlers=[
            CustomerController,
            NearbyController,
            ImagesController,
            MailController,
            SignInController,
            OperatorController,
            VendorController,
            RequestsApiController,
            StaffTokenController,
            StaffApiController,
            HealthController,
            SearchController,
            DocsController,
            MetricsController,
            WaitlistPagesController,
            WaitlistApiController,
            ApplicationPagesController,
            ApplicationsApiController,
            VendorApplicationPagesController,
            VendorApplicationsApiController,
            AdminVendorApplicationsController,
            VendorTeamController,
            VendorKeysApiController,
            AdminController,
            RatesController,
            VendorOrdersController,
            VendorOutboxPagesController,
            VendorOutboxApiController,
            VendorCatalogsPagesController,
            VendorCatalogsApiController,
            VendorProductsApiController,
            VendorStoresPagesController,
            VendorStoresApiController,
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
        ],
        dependencies=DEPENDENCIES,
        state=state,
        lifespan=[
            keep_index_current,
            reconcile_payments,
            apply_time_limits,
            deliver_mail,
            run_ingest_jobs,
            repair_products,
        ],
        on_startup=[lambda: clean_leftovers(settings.workspace, sessions)],  # what killed runs left behind
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(template_environment())),
        csrf_config=CSRFConfig(
            secret=hashlib.sha256(b"csrf:" + secret).hexdigest(),
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            exclude=["/api/", "/schema", "/metrics", "/mail/unsubscribe/"],  # mail clients post the one click
        ),
        exception_handlers={**EXCEPTION_HANDLERS, RecursionError: nested_too_deep},
        middleware=[
            RequestIdMiddleware(),  # first: every log line of the request carries its id
            PROMETHEUS.middleware,  # per-route counts and latency (api.metrics)
            AllowedHostsMiddleware(settings.trusted_hosts()),
            BodyTimeoutMiddleware(settings.body_timeout_s),
            *rate_limit_middleware(settings.rate_limits),
        ],
        openapi_config=OpenAPIConfig(
            title="Vitrine",
            version=_version(),
            path="/schema",
            components=BEARER_COMPONENTS,  # the staff and vendor API's bearer token (api.bearer)
            # Litestar's HTML viewers load their scripts from a CDN, blank on an offline machine: the
            # document is served at /schema (JSON) and /schema/openapi.yaml, and read at /docs
            # (api.controllers.docs: Swagger UI from an installed package).
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        ),
        # Text forms and JSON get a few KB; the photo routes declare their own limit (api.limits).
        request_max_body_size=settings.max_form_bytes,
        multipart_form_part_limit=MULTIPART_PARTS,
        # The security headers on every response, error pages included, and no-store unless a response
        # may be cached (api.response_headers).
        before_send=[response_headers(SECURITY_HEADERS), allow_every_method],  # api.allow_header: litestar#4169
        debug=False,
    )


def create_app_from_env() -> Litestar:
    """The full app configured from the environment: for `uvicorn --factory` and `vitrine bench serve --app`."""
    return create_app(Settings.from_env())

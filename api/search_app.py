"""An app serving only `POST /api/search`: what the load benchmark and the endpoint tests run.

Configured from the environment, like every `vitrine` command: `VITRINE_HOME` (workspace and
models), `VITRINE_MODEL`, and `VITRINE_SEARCH_WINDOW_MS` / `VITRINE_SEARCH_MAX_BATCH` for the
micro-batcher. `uvicorn --factory api.search_app:create_search_app` serves it.
"""

from __future__ import annotations

import os

from litestar import Litestar
from sqlalchemy.engine import Engine

from api.routes.search import search_routes
from catalog.db import make_engine, session_factory
from catalog.search_service import SearchService
from catalog.workspace import Workspace
from vision.model_store import DEFAULT_MODEL


def service_from_env(engine: Engine) -> SearchService:
    return SearchService(
        Workspace.from_env(),
        session_factory(engine),
        os.environ.get("VITRINE_MODEL") or DEFAULT_MODEL,
        window_ms=float(os.environ.get("VITRINE_SEARCH_WINDOW_MS", "4")),
        max_batch=int(os.environ.get("VITRINE_SEARCH_MAX_BATCH", "16")),
    )


def create_search_app(service: SearchService | None = None) -> Litestar:
    """With `service`, serve it (the caller closes it); without, open one from the environment at start-up."""
    if service is not None:
        app = Litestar(route_handlers=[*search_routes])
        app.state.search = service
        return app

    def open_service(app: Litestar) -> None:
        app.state.engine = make_engine(Workspace.from_env().database_url)
        app.state.search = service_from_env(app.state.engine)

    def close_service(app: Litestar) -> None:
        app.state.search.close()
        app.state.engine.dispose()

    return Litestar(route_handlers=[*search_routes], on_startup=[open_service], on_shutdown=[close_service])

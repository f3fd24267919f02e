"""An app serving only `POST /api/search`: what the load benchmark and the endpoint tests run.

Configured from the environment, like every `vitrine` command: `VITRINE_HOME` (workspace and
models), `VITRINE_MODEL`, and `VITRINE_SEARCH_WINDOW_MS` / `VITRINE_SEARCH_MAX_BATCH` for the
micro-batcher. `uvicorn --factory api.search_app:create_search_app` serves it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.di import Provide
from sqlalchemy.engine import Engine

from api.controllers.search import SearchController
from api.dependencies import provide_search
from api.errors import EXCEPTION_HANDLERS
from catalog.db import make_engine, session_factory
from catalog.search_service import SearchService
from catalog.workspace import Workspace
from vision.model_store import chosen_model


def service_from_env(engine: Engine) -> SearchService:
    return SearchService(
        Workspace.from_env(),
        session_factory(engine),
        chosen_model(),
        window_ms=float(os.environ.get("VITRINE_SEARCH_WINDOW_MS", "4")),
        max_batch=int(os.environ.get("VITRINE_SEARCH_MAX_BATCH", "16")),
    )


@contextlib.asynccontextmanager
async def _service_from_env(app: Litestar) -> AsyncIterator[None]:
    """Open the search service from the environment at start-up; close it at shut-down."""
    engine = make_engine(Workspace.from_env().database_url)
    app.state.search = service_from_env(engine)
    try:
        yield
    finally:
        app.state.search.close()
        engine.dispose()


def create_search_app(service: SearchService | None = None) -> Litestar:
    """With `service`, serve it (the caller closes it); without, open one from the environment at start-up."""
    app = Litestar(
        route_handlers=[SearchController],
        dependencies={"search": Provide(provide_search, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[] if service is not None else [_service_from_env],
    )
    if service is not None:
        app.state.search = service
    return app

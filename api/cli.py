"""`vitrine serve`: the web app under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def serving_url(host: str, port: int) -> str:
    """The address links name when VITRINE_PUBLIC_URL is not set: where `vitrine serve` listens."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Embedding model (default: $VITRINE_MODEL, else vitrine-lite2)."),
    ] = None,
) -> None:
    """Run the web app: customer pages, operator workbench, JSON API (/api, OpenAPI at /schema)."""
    import logging.config
    import os

    import uvicorn

    from api.app import create_app
    from api.log_redaction import REDACTION_FILTERS
    from api.logging_config import logging_config
    from api.slow_clients import uvicorn_options
    from migrations.runner import SchemaError
    from vision.errors import ModelUnavailable
    from workflow.settings import Settings

    # One JSON object per line with the request id (VITRINE_LOG_FORMAT=text for plain lines): api.logging_config.
    # Customer tokens in request paths are rewritten out of every line (api.log_redaction).
    log_config = logging_config(os.environ.get("VITRINE_LOG_FORMAT", "json"), filters=REDACTION_FILTERS)
    logging.config.dictConfig(log_config)
    settings = Settings.from_env(model)
    if "VITRINE_PUBLIC_URL" not in os.environ:  # links name the address served here (the demo's case)
        settings.public_url = serving_url(host, port)
        if host in ("0.0.0.0", "::", ""):
            err.print(
                "[yellow]Set VITRINE_PUBLIC_URL[/] to the address people use: until then links name 127.0.0.1"
                " and requests for other host names are refused (VITRINE_ALLOWED_HOSTS adds names)."
            )
    try:
        app = create_app(settings)
    except (ModelUnavailable, SchemaError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if settings.payment_provider == "test":
        err.print("[bold yellow]TEST MODE[/] payments use the built-in test provider: no money moves.")
    err.print(f"Vitrine on http://{host}:{port}/  (data: {settings.workspace.home}, model: {settings.model})")
    # Slow or oversized headers cannot hold a connection; the app bounds the body (api.slow_clients).
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=log_config, **uvicorn_options())

"""`vitrine serve`: the web app under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Embedding model (default: $VITRINE_MODEL, else vitrine-lite2)."),
    ] = None,
) -> None:
    """Run the web app: customer pages, operator workbench, JSON API (/api, OpenAPI at /schema)."""
    import logging

    import uvicorn

    from api.app import create_app
    from migrations.runner import SchemaError
    from vision.errors import ModelUnavailable
    from workflow.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(model)
    try:
        app = create_app(settings)
    except (ModelUnavailable, SchemaError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if settings.payment_provider == "test":
        err.print("[bold yellow]TEST MODE[/] payments use the built-in test provider: no money moves.")
    err.print(f"Vitrine on http://{host}:{port}/  (data: {settings.workspace.home}, model: {settings.model})")
    uvicorn.run(app, host=host, port=port, log_level="info")

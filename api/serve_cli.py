"""`vitrine serve` and `vitrine users add`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)
users_app = typer.Typer(help="Staff accounts (operators, admins, vendors).", no_args_is_help=True)


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Embedding model [default: $VITRINE_MODEL or vit-b-32-laion2b].")
    ] = None,
) -> None:
    """Run the web app: customer pages, operator workbench, JSON API (/api, OpenAPI at /schema)."""
    import logging

    import uvicorn

    from api.app import create_app
    from api.settings import Settings
    from vision.errors import ModelUnavailable

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(model)
    try:
        app = create_app(settings)
    except ModelUnavailable as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if settings.payment_provider == "test":
        err.print("[bold yellow]TEST MODE[/] payments use the built-in test provider: no money moves.")
    err.print(f"Vitrine on http://{host}:{port}/  (data: {settings.workspace.home}, model: {settings.model})")
    uvicorn.run(app, host=host, port=port, log_level="info")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[str, typer.Option(help="operator, admin or vendor.")] = "operator",
    password: Annotated[
        str | None, typer.Option(help="Password (prompted, hidden, when not given).", show_default=False)
    ] = None,
    vendor: Annotated[str | None, typer.Option(help="For --role vendor: the vendor name to link.")] = None,
) -> None:
    """Create a staff account (argon2-hashed password)."""
    from sqlalchemy import select

    from api.users import UserError, add_user
    from catalog_ingest.db import Vendor, make_engine, session_factory
    from catalog_ingest.workspace import Workspace

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(Workspace.from_env().database_url)
    sessions = session_factory(engine)
    vendor_id = None
    if vendor is not None:
        with sessions() as session:
            vendor_id = session.scalar(select(Vendor.id).where(Vendor.name == vendor))
        if vendor_id is None:
            err.print(f"[bold red]error:[/] no vendor named {vendor!r}; ingest its catalog first.")
            raise typer.Exit(2)
    try:
        user = add_user(sessions, name, role, password, vendor_id)
    except UserError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    err.print(f"created {user.role} {user.name!r}")

"""`vitrine users ...`: staff accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)
users_app = typer.Typer(help="Staff accounts (operators, admins, vendors).", no_args_is_help=True)


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

    from catalog.db import Vendor, make_engine, session_factory
    from catalog.workspace import Workspace
    from workflow.users import UserError, add_user

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

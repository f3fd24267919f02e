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


payments_app = typer.Typer(help="Payments: settling what a crash or an outage left.", no_args_is_help=True)


@payments_app.command("reconcile")
def payments_reconcile(
    grace: Annotated[
        float, typer.Option(help="Seconds after which a pending payment is no longer taken as in flight.")
    ] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Settle pending payments, release holds no request relies on, retry failed voids and free
    requests stuck in `accepted` (the app does this at start-up and every minute)."""
    import json
    import os

    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace
    from workflow.payment_saga import reconcile
    from workflow.payments import open_provider

    workspace = Workspace.from_env()
    provider = open_provider(os.environ.get("VITRINE_PAYMENTS", "test"), workspace.home)
    engine = make_engine(workspace.database_url)
    try:
        counts = reconcile(session_factory(engine), provider, grace)
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(counts, sort_keys=True))
    else:
        err.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "nothing to reconcile")

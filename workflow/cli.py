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


def _user_sessions():  # type: ignore[no-untyped-def]
    """(engine, sessionmaker) on this data folder's database."""
    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace

    engine = make_engine(Workspace.from_env().database_url)
    return engine, session_factory(engine)


def _run(action, *args):  # type: ignore[no-untyped-def]
    """Run an account change; a refusal is one red line and exit code 2, never a traceback."""
    from workflow.totp import TotpError
    from workflow.users import UserError

    engine, sessions = _user_sessions()
    try:
        return action(sessions, *args)
    except (UserError, TotpError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    from workflow.users import set_active

    _run(set_active, name, False)
    err.print(f"disabled {name!r} and ended its sessions")


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Let a disabled account sign in again."""
    from workflow.users import set_active

    _run(set_active, name, True)
    err.print(f"enabled {name!r}")


@users_app.command("reset-password")
def users_reset_password(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    password: Annotated[
        str | None, typer.Option(help="The new password (prompted twice, hidden, when not given).", show_default=False)
    ] = None,
) -> None:
    """Set a new password (12+ characters, not a common one); the account's sessions end."""
    from workflow.users import reset_password

    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    _run(reset_password, name, password)
    err.print(f"new password set for {name!r}; its sessions were ended")


@users_app.command("totp")
def users_totp(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    remove: Annotated[bool, typer.Option("--remove", help="Turn two-factor sign-in off (a lost phone).")] = False,
) -> None:
    """Turn on TOTP two-factor sign-in: prints the secret and the otpauth:// URI once, to scan into an
    authenticator app. Running it again replaces the secret (the old codes stop working)."""
    from workflow import totp

    if remove:
        _run(totp.remove, name)
        err.print(f"two-factor sign-in removed for {name!r}")
        return
    secret, uri = _run(totp.enrol, name)
    print(uri)
    err.print(f"secret {secret} (shown once; add it to an authenticator app, then sign in with its code)")


sessions_app = typer.Typer(help="Staff sign-in sessions.", no_args_is_help=True)
users_app.add_typer(sessions_app, name="sessions")


@sessions_app.command("revoke")
def sessions_revoke(name: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """End every sign-in session of an account (it must sign in again)."""
    from workflow.users import revoke_sessions

    ended = _run(revoke_sessions, name)
    err.print(f"ended {ended} session(s) of {name!r}")

"""`vitrine mail send` (one delivery pass, as the app's background sender does) and `vitrine mail
status` (how many messages are in each state, and the latest failures with their reasons)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)
mail_app = typer.Typer(help="E-mail: the durable outbox and its delivery.", no_args_is_help=True)


def _open():  # type: ignore[no-untyped-def]
    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace

    workspace = Workspace.from_env()
    engine = make_engine(workspace.database_url)
    return workspace, engine, session_factory(engine)


@mail_app.command("send")
def mail_send(as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False) -> None:
    """Deliver every message that is due now (SMTP when VITRINE_SMTP_HOST is set, else .eml files)."""
    from mail.delivery import transport_for
    from mail.sender import Sender
    from mail.settings import MailSettings, MailSettingsError

    try:
        settings = MailSettings.from_env()
    except MailSettingsError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    workspace, engine, sessions = _open()
    try:
        result = Sender(sessions, settings, transport_for(settings, workspace.home / "outbox")).run_once()
    finally:
        engine.dispose()
    counts = {"sent": result.sent, "retried": result.retried, "failed": result.failed, "suppressed": result.suppressed}
    if as_json:
        print(json.dumps({**counts, "next_due_s": result.next_due_s, "errors": result.errors}))
        return
    err.print(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" (via {'SMTP' if settings.smtp else '.eml files'})")
    for error in result.errors:
        err.print(f"  {error}")


@mail_app.command("status")
def mail_status(
    recent: Annotated[int, typer.Option(help="How many of the latest failures to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Messages per state and the latest failures (who, what, why)."""
    from mail.status import outbox_status

    _, engine, sessions = _open()
    try:
        report = outbox_status(sessions, recent)
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(report))
        return
    counts = report["counts"]
    print(", ".join(f"{name}: {counts[name]}" for name in counts))
    if report["oldest_waiting"]:
        print(f"oldest waiting since {report['oldest_waiting']}")
    retrying = report["retrying"]
    if retrying["count"]:
        print(f"{retrying['count']} waiting to be tried again, next at {retrying['next_attempt_at']}")
        print(f"  latest error: {retrying['latest_error']}")
    for failure in report["failures"]:
        head = f"failed #{failure['id']} to {failure['to']} ({failure['subject']})"
        print(f"{head}, {failure['attempts']} attempts: {failure['error']}")

"""`vitrine rates`: the exchange-rates table from the command line (the admin page edits the same rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

rates_app = typer.Typer(
    help="Exchange rates that compare prices with budgets in other currencies.", no_args_is_help=True
)


@rates_app.command("import")
def rates_import(
    file: Annotated[
        Path, typer.Argument(help="CSV with a header currency,rate,as_of[,source]; rate = units per 1 EUR.")
    ],
) -> None:
    """Insert or replace the rates of FILE (all of them, or none when a line is wrong)."""
    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace
    from workflow import rates
    from workflow.errors import Invalid

    try:
        rows = rates.read_csv(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from None
    except Invalid as exc:
        raise typer.BadParameter(exc.message) from None
    engine = make_engine(Workspace.from_env().database_url)
    try:
        count = rates.set_rates(session_factory(engine), rows, "cli")
    finally:
        engine.dispose()
    print(f"{count} rate(s) saved: " + ", ".join(f"{r.currency} {r.per_base.normalize()} ({r.as_of})" for r in rows))


@rates_app.command("list")
def rates_list() -> None:
    """The rates now in use, with their dates."""
    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace
    from workflow import rates

    engine = make_engine(Workspace.from_env().database_url)
    try:
        table = rates.rates_view(session_factory(engine))
    finally:
        engine.dispose()
    print(f"{rates.BASE} 1 (the base)")
    for row in table:
        print(f"{row['currency']} {row['per_base']} as of {row['as_of']} {row['source']}".rstrip())

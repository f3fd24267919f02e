"""The `vitrine` command: one entry point whose subcommands come from each package's own command group."""

from __future__ import annotations

import sys

import typer

from api.cli import serve_command
from benchmarks.cli import bench_app
from catalog.cli import backup_command, db_app, doctor_command, restore_command, search_command
from catalog_ingest.cli import ingest_command, reembed_command_with
from catalog_ingest.stores_cli import stock_app, stores_app
from demo.cli import demo_app, models_train_demo
from evaluation.cli import eval_command
from index.cli import index_app
from learning.cli import learn_command
from mail.cli import mail_app
from migrations.runner import SchemaError
from training.cli import models_train_lite2
from vision.cli import embed_command, models_app
from workflow.cli import payments_app, users_app
from workflow.pairs_cli import pairs_app
from workflow.rates_cli import rates_app
from workflow.view_reembed import CustomerViews

app = typer.Typer(
    name="vitrine",
    help="Vitrine: image-first visual product search with humans in the loop.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app.command("train-demo")(models_train_demo)
models_app.command("train-lite2")(models_train_lite2)

app.add_typer(models_app, name="models")
app.add_typer(demo_app, name="demo")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")
app.add_typer(users_app, name="users")
app.add_typer(pairs_app, name="pairs")
app.add_typer(payments_app, name="payments")
app.add_typer(rates_app, name="rates")
app.add_typer(mail_app, name="mail")
app.add_typer(db_app, name="db")
app.add_typer(stores_app, name="stores")
app.add_typer(stock_app, name="stock")
app.command("embed")(embed_command)
app.command("ingest")(ingest_command)
# Customer views are re-embedded too; catalog_ingest may not import workflow, so they are handed over here.
app.command("reembed")(reembed_command_with(CustomerViews))
app.command("search")(search_command)
app.command("doctor")(doctor_command)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("eval")(eval_command)
app.command("learn")(learn_command)
app.command("serve")(serve_command)


def main() -> None:
    """Run the command; a database that needs `vitrine db upgrade` (or a newer Vitrine) is one line, exit 2."""
    try:
        app()
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

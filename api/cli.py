"""The `vitrine` command: one entry point whose subcommands come from each layer."""

from __future__ import annotations

import typer

from api.serve_cli import serve_command, users_app
from catalog_ingest.cli import bench_ingest, doctor_command, ingest_command, search_command
from index.cli import bench_index, index_app
from vision.cli import bench_app, embed_command, models_app

app = typer.Typer(
    name="vitrine",
    help="Vitrine: image-first visual product search with humans in the loop.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")
app.add_typer(users_app, name="users")
bench_app.command("index")(bench_index)
bench_app.command("ingest")(bench_ingest)
app.command("embed")(embed_command)
app.command("ingest")(ingest_command)
app.command("search")(search_command)
app.command("doctor")(doctor_command)
app.command("serve")(serve_command)


def main() -> None:
    app()

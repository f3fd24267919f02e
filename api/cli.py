"""The `vitrine` command: one entry point whose subcommands come from each layer."""

from __future__ import annotations

import typer

from catalog_ingest.cli import (
    bench_ingest,
    demo_catalog_command,
    demo_queries_command,
    doctor_command,
    eval_command,
    ingest_command,
    search_command,
)
from index.cli import bench_index, index_app
from vision.cli import bench_app, embed_command, models_app

app = typer.Typer(
    name="vitrine",
    help="Vitrine: image-first visual product search with humans in the loop.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
demo_app = typer.Typer(help="The demo catalog: generated vendor catalogs and customer photos.", no_args_is_help=True)
demo_app.command("catalog")(demo_catalog_command)
demo_app.command("queries")(demo_queries_command)

app.add_typer(models_app, name="models")
app.add_typer(demo_app, name="demo")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")
bench_app.command("index")(bench_index)
bench_app.command("ingest")(bench_ingest)
app.command("embed")(embed_command)
app.command("ingest")(ingest_command)
app.command("search")(search_command)
app.command("doctor")(doctor_command)
app.command("eval")(eval_command)


def main() -> None:
    app()

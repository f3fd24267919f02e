"""The `vitrine` command: one entry point whose subcommands come from each layer."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from api.demo import demo_command
from api.serve_cli import serve_command, users_app
from catalog_ingest.cli import (
    bench_ingest,
    bench_publish,
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
demo_app = typer.Typer(
    help="The demo: with no subcommand, generate and ingest the demo catalog and serve the app on localhost.",
    invoke_without_command=True,
)
demo_app.callback()(demo_command)
demo_app.command("catalog")(demo_catalog_command)
demo_app.command("queries")(demo_queries_command)

app.add_typer(models_app, name="models")
app.add_typer(demo_app, name="demo")
app.add_typer(index_app, name="index")
app.add_typer(bench_app, name="bench")
app.add_typer(users_app, name="users")
bench_app.command("index")(bench_index)
bench_app.command("ingest")(bench_ingest)
bench_app.command("publish")(bench_publish)
app.command("embed")(embed_command)
app.command("ingest")(ingest_command)
app.command("search")(search_command)
app.command("doctor")(doctor_command)
app.command("eval")(eval_command)
app.command("serve")(serve_command)


def bench_serve_command(
    products: Annotated[int, typer.Option(help="Generated products in the catalog.")] = 100_000,
    clients: Annotated[
        str,
        typer.Option(help="Concurrent clients per level, comma-separated (latency at the fewest, rate at the most)."),
    ] = "1,16",
    requests: Annotated[int, typer.Option(help="Requests per level (each level also stops after --duration).")] = 320,
    duration: Annotated[float, typer.Option(help="Seconds per level after which no request starts.")] = 120.0,
    model: Annotated[str, typer.Option("--model", "-m", help="Model or open_clip architecture.")] = "ViT-B-32",
    random_weights: Annotated[bool, typer.Option("--random-weights/--trained-weights", help="Random weights.")] = True,
    window_ms: Annotated[float, typer.Option(help="Micro-batch window in milliseconds.")] = 4.0,
    max_batch: Annotated[int, typer.Option(help="Largest micro-batch.")] = 16,
    app: Annotated[
        str, typer.Option(help="App factory uvicorn serves (module:callable).")
    ] = "api.app:create_app_from_env",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Photo searches per second and latency through the web server, against the embedder's own rate (same run)."""
    from rich.console import Console

    from api.bench_serve import ServeBenchSettings, run_serve_bench
    from vision.model_store import ModelStore

    err = Console(stderr=True)
    try:
        levels = tuple(int(c) for c in clients.split(",") if c.strip())
    except ValueError:
        levels = ()
    if not levels or min(levels) < 1 or products < 1 or requests < 1:
        err.print(
            f"[bold red]error:[/] --clients takes whole numbers from 1 separated by commas (got {clients!r}); "
            "--products and --requests must be at least 1"
        )
        raise typer.Exit(2)
    settings = ServeBenchSettings(
        products=products,
        clients=levels,
        requests=requests,
        duration_s=duration,
        model=model,
        random_weights=random_weights,
        window_ms=window_ms,
        max_batch=max_batch,
        app=app,
    )
    result = run_serve_bench(settings, ModelStore(), log=lambda m: err.print(m, style="dim"))
    print(json.dumps(result, indent=None if as_json else 2))


bench_app.command("serve")(bench_serve_command)


def main() -> None:
    app()

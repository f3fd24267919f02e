"""`vitrine demo`, `vitrine demo catalog`, `vitrine demo queries` and `vitrine models train-demo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from demo.command import demo_command

err = Console(stderr=True)

demo_app = typer.Typer(
    help="The demo: with no subcommand, generate and ingest the demo catalog and serve the app on localhost.",
    invoke_without_command=True,
)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def demo_catalog_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (one sub-folder per vendor).")],
    seed: Annotated[int, typer.Option(help="Generator seed: the same seed writes the same catalog.")] = 7,
    products: Annotated[int, typer.Option(help="Number of products, spread over the vendors.")] = 2000,
) -> None:
    """Generate a demo catalog: vendor CSV files and clean product shots that `vitrine ingest` accepts."""
    from demo.catalog import write_demo_catalog

    try:
        catalog = write_demo_catalog(out, seed, products, progress=lambda d, t: err.print(f"{d}/{t}", style="dim"))
    except ValueError as exc:
        _fail(str(exc))
    for vendor, path in catalog.vendor_files.items():
        print(f"vitrine ingest {path} --vendor {vendor}")
    err.print(f"{products} products from seed {seed} in {out}; ingest each vendor file with the commands above")


def demo_queries_command(
    catalog: Annotated[Path, typer.Option("--catalog", help="A folder written by `vitrine demo catalog`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the queries to.")],
    seed: Annotated[
        int, typer.Option(help="Seed of the customer photos (keep it apart from training seeds).")
    ] = 424242,
    photos: Annotated[int, typer.Option(help="Customer photos of distinct catalog products.")] = 500,
) -> None:
    """Simulated customer photos of catalog products, plus text queries, for `vitrine eval --queries`."""
    from demo.catalog import DemoCatalog, write_queries

    try:
        opened = DemoCatalog.open(catalog)
    except FileNotFoundError as exc:
        _fail(str(exc))
    queries = write_queries(opened, out, seed, photos, progress=lambda d, t: err.print(f"{d}/{t}", style="dim"))
    err.print(f"{len(queries)} customer photos and the text queries in {out}")


def models_train_demo(
    out: Annotated[Path, typer.Option(help="Folder for the checkpoint and training.json.")] = Path("models/demo"),
    products: Annotated[int, typer.Option(help="Generated training products.")] = 3000,
    photos_per_product: Annotated[int, typer.Option(help="Customer photos rendered per training product.")] = 8,
    steps: Annotated[
        int, typer.Option(help="Most training steps (the time budget usually ends the run first).")
    ] = 6000,
    time_budget: Annotated[
        float, typer.Option(help="Most seconds for the whole run, rendering included (the default fits 20 minutes).")
    ] = 1140.0,
    batch: Annotated[int, typer.Option(help="Products per step.")] = 96,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine decay after a short warm-up).")] = 2e-3,
    init: Annotated[Path | None, typer.Option(help="Continue from this checkpoint instead of random weights.")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Keep the rendered training pool here and reuse it on the next run.")
    ] = None,
    precision: Annotated[
        str, typer.Option(help="auto (bf16 autocast where the CPU has native bf16, else fp32), bf16 or fp32.")
    ] = "auto",
    augment: Annotated[bool, typer.Option(help="Random zoom, shift, tilt and light on the photos each step.")] = True,
) -> None:
    """Train the offline `demo` model (open_clip architecture `vitrine-demo`) on generated products. Needs torch.

    Writes OUT/demo.safetensors and OUT/training.json; `models/demo/manifest.json` names the checkpoint, and
    the ONNX files are exported from it on first use.
    """
    if precision not in ("auto", "bf16", "fp32"):
        _fail(f"--precision must be auto, bf16 or fp32, not {precision!r}")
    try:
        from demo.train import TrainSettings, train_demo
    except ImportError as exc:
        _fail(f"training needs torch and open_clip (`pip install -e '.[torch]'`): {exc}")
    settings = TrainSettings(
        products=products,
        photos_per_product=photos_per_product,
        steps=steps,
        time_budget_s=time_budget,
        batch=batch,
        threads=threads,
        lr=lr,
        init=str(init) if init else None,
        precision=precision,
        augment=augment,
    )
    report = train_demo(out, settings, log=lambda m: err.print(m, style="dim"), cache=cache)
    print(json.dumps({k: v for k, v in vars(report).items() if k != "losses"}))


demo_app.callback()(demo_command)
demo_app.command("catalog")(demo_catalog_command)
demo_app.command("queries")(demo_queries_command)

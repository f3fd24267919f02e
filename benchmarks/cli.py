"""`vitrine bench ...`: every benchmark of the project, each printing one JSON object.

Each measures against a baseline taken in the same run (these machines are noisy); heavy imports
happen inside the commands so `--help` stays instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from index.planner import parse_size
from vision.errors import ModelUnavailable
from vision.model_store import ModelStore
from vision.preprocess import PreprocessConfig

err = Console(stderr=True)
bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)

ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Model name (see `vitrine models list`) or a folder with a manifest.")
]
BudgetOption = Annotated[str, typer.Option("--memory-budget", help="Memory the index may use, e.g. 2GB, 512MB.")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def bench_embed(
    model: ModelOption = "ViT-B-32",
    random_weights: Annotated[
        bool, typer.Option("--random-weights", help="Random weights: same compute, no download.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Batch size for the embedding-only rates.")] = 32,
    rounds: Annotated[int, typer.Option(help="Timed batches per backend.")] = 3,
    photos: Annotated[int, typer.Option(help="12-megapixel JPEGs through the pipeline.")] = 256,
    threads: Annotated[int, typer.Option(help="Inference threads (0: all cores).")] = 0,
    torch: Annotated[bool, typer.Option("--torch/--no-torch", help="Include the torch baseline.")] = True,
    baseline: Annotated[
        str | None,
        typer.Option(help="Also time this architecture (random weights) in the same run, e.g. ViT-B-32; adds ratios."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Embedding throughput (torch, ONNX fp32, ONNX int8), decode-included pipeline rate and latency.

    `vitrine bench embed --model vitrine-lite2 --baseline ViT-B-32 --json` times the default model next to
    ViT-B-32's compute in one run."""
    from benchmarks.embed import BenchSettings, run_embed_bench

    settings = BenchSettings(
        model=model,
        random_weights=random_weights,
        batch=batch,
        rounds=rounds,
        photos=photos,
        threads=threads,
        include_torch=torch,
        baseline=baseline,
    )
    try:
        result = run_embed_bench(settings, ModelStore(), log=lambda m: err.print(m, style="dim"))
    except ModelUnavailable as exc:
        _fail(str(exc))
    print(json.dumps(result, indent=None if as_json else 2))
    sys.stdout.flush()


def bench_decode(
    files: Annotated[list[Path], typer.Argument(help="JPEG photos to time.")],
    size: Annotated[int, typer.Option(help="Model input size the draft decode aims at.")] = 224,
    repeats: Annotated[int, typer.Option(help="Timed decodes per file and path.")] = 5,
) -> None:
    """Full vs draft (DCT-scaled) decode time per photo, as JSON: the fast path's gain on real files."""
    from benchmarks.embed import run_decode_bench

    print(json.dumps(run_decode_bench(files, PreprocessConfig(image_size=(size, size)), repeats)))


def bench_draft(
    files: Annotated[list[Path], typer.Argument(help="Photos (JPEG) to prepare and embed.")],
    model: Annotated[str, typer.Option(help="Installed model whose input size and embeddings count.")] = "demo",
) -> None:
    """Cost of each step of preparing a photo, and how far smaller JPEG draft decoding moves the
    embeddings from exact decoding, as JSON (the trade-off behind the draft setting)."""
    from benchmarks.draft import run_draft_bench
    from vision.embedder import open_embedder
    from vision.errors import ModelUnavailable

    try:
        embedder = open_embedder(model, "onnx")
    except ModelUnavailable as exc:
        raise typer.BadParameter(str(exc)) from None
    print(json.dumps(run_draft_bench(embedder, files)))


def bench_index(
    n: Annotated[str, typer.Option("--n", help="Vectors, e.g. 100k, 1M, 5M.")] = "100k",
    dim: Annotated[int, typer.Option(help="Vector dimension.")] = 512,
    kind: Annotated[str, typer.Option(help="auto (planner), flat, ivf-sq8 or ivf-pq.")] = "auto",
    memory_budget: BudgetOption = "4GB",
    nprobe: Annotated[int, typer.Option(help="Inverted lists probed per query (before filter scaling).")] = 16,
    queries: Annotated[int, typer.Option(help="Queries for recall and batch throughput.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Build time, memory, recall@10 and latency of the index on the fixed synthetic generator, vs exact search."""
    from benchmarks.index_search import IndexBenchSettings, parse_count, run_index_bench

    settings = IndexBenchSettings(
        n=parse_count(n), dim=dim, kind=kind, memory_budget=parse_size(memory_budget), nprobe=nprobe, queries=queries
    )
    result = run_index_bench(settings, log=lambda m: err.print(m, style="dim"))
    print(json.dumps(result, indent=None if as_json else 2))


def bench_ingest(
    rows: Annotated[
        int, typer.Option(help="Rows (one distinct ~1200x1200 JPEG each) in the generated catalog.")
    ] = 10000,
    model: Annotated[str, typer.Option("--model", "-m", help="Model or open_clip architecture.")] = "ViT-B-32",
    random_weights: Annotated[bool, typer.Option("--random-weights/--trained-weights", help="Random weights.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ingest throughput against the embedder's own rate (same run), and the ingest process's peak memory."""
    from benchmarks.ingest import run_ingest_bench
    from vision.model_store import ModelStore

    result = run_ingest_bench(rows, model, random_weights, ModelStore(), log=lambda m: err.print(m, style="dim"))
    print(json.dumps(result, indent=None if as_json else 2))


def bench_publish(
    n: Annotated[str, typer.Option("--n", help="Vectors in the catalog, e.g. 200k, 1M.")] = "200k",
    dim: Annotated[int, typer.Option(help="Vector dimension.")] = 512,
    update_share: Annotated[
        float, typer.Option(help="Share of the catalog the update adds (a quarter of that is removed).")
    ] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The end of an ingest on a large catalog: extending the saved index against rebuilding it (same run)."""
    from benchmarks.index_search import parse_count
    from benchmarks.publish import run_publish_bench

    if not 0 < update_share <= 1:
        _fail("--update-share must be above 0 and at most 1")
    result = run_publish_bench(parse_count(n), dim, update_share, log=lambda m: err.print(m, style="dim"))
    print(json.dumps(result, indent=None if as_json else 2))


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

    from benchmarks.serve import ServeBenchSettings, run_serve_bench
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


def bench_soak_command(
    minutes: Annotated[float, typer.Option(help="How long the traffic runs (no request starts after).")] = 10.0,
    clients: Annotated[int, typer.Option(help="Concurrent clients (a quarter of them operators).")] = 8,
    url: Annotated[
        str | None, typer.Option(help="A running app to load; without it one is started over generated products.")
    ] = None,
    operator: Annotated[
        list[str] | None, typer.Option(help="NAME:PASSWORD of an operator of the running app (repeatable; --url).")
    ] = None,
    server_pid: Annotated[
        int | None, typer.Option(help="The running app's process, to sample its memory (--url).")
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model of the app it starts.")] = "vitrine-lite2",
    products: Annotated[int, typer.Option(help="Generated products of the app it starts.")] = 2_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Mixed traffic (searches, requests, operators' offers, accepts) for N minutes: errors by route and
    status, p50/p99 per route, the server's memory at the start, after the warm-up and at the end."""
    from benchmarks.soak import SoakSettings, run_soak

    accounts = []
    for given in operator or []:
        name, _, password = given.partition(":")
        if not name or not password:
            _fail(f"--operator takes NAME:PASSWORD, not {given!r}")
        accounts.append((name, password))
    if minutes <= 0 or clients < 1:
        _fail("--minutes must be above 0 and --clients at least 1")
    settings = SoakSettings(
        minutes=minutes,
        clients=clients,
        url=url.rstrip("/") if url else None,
        operators=accounts,
        server_pid=server_pid,
        model=model,
        products=products,
    )
    try:
        result = run_soak(settings, ModelStore(), log=lambda m: err.print(m, style="dim"))
    except ModelUnavailable as exc:
        _fail(str(exc))
    print(json.dumps(result, indent=None if as_json else 2))


def bench_stores(
    products: Annotated[int, typer.Option(help="Products (one image vector each).")] = 100_000,
    stores: Annotated[int, typer.Option(help="Stores, clustered in French towns.")] = 1_000,
    rows: Annotated[int, typer.Option(help="(store, product) stock rows, the same number per store.")] = 5_000_000,
    queries: Annotated[int, typer.Option(help="Timed queries per path.")] = 300,
    within_km: Annotated[float, typer.Option(help="The nearby radius in km.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A photo search filtered to "in stock within 10 km" against the unfiltered one, in one run.

    Synthetic catalog, stores and stock in a scratch data folder (deleted afterwards); p50/p95 of
    both, their ratio (target: at most 2x), recall@10 against an exact scan of the allowed products."""
    from benchmarks.stores import StoresBenchSettings, run_stores_bench

    settings = StoresBenchSettings(products=products, stores=stores, rows=rows, queries=queries, within_km=within_km)
    try:
        result = run_stores_bench(settings, log=lambda m: err.print(m, style="dim"))
    except ValueError as exc:
        _fail(str(exc))
    print(json.dumps(result, indent=None if as_json else 2))


bench_app.command("embed")(bench_embed)
bench_app.command("decode")(bench_decode)
bench_app.command("draft")(bench_draft)
bench_app.command("index")(bench_index)
bench_app.command("ingest")(bench_ingest)
bench_app.command("publish")(bench_publish)
bench_app.command("serve")(bench_serve_command)
bench_app.command("soak")(bench_soak_command)
bench_app.command("stores")(bench_stores)

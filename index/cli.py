"""`vitrine index ...`: build, rebuild, compact and inspect the vector index."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from index.errors import IndexError_
from index.planner import IndexPlan, parse_size, plan_index

err = Console(stderr=True)
index_app = typer.Typer(help="Build, rebuild and inspect the vector index.", no_args_is_help=True)


def _home() -> Path:
    return Path(os.environ.get("VITRINE_HOME", "var"))


def _locations(store: Path | None, index: Path | None, model: str | None = None) -> tuple[Path, Path]:
    """Explicit folders win; otherwise the model's store under $VITRINE_HOME/vectors/ (by model id, or
    by name: the id before its '@'), or the only one there, and its index folder under
    $VITRINE_HOME/index/ (ingest keeps one of each per model)."""
    if store is not None:
        return store, index or _home() / "index" / store.name
    stores = sorted(p.parent for p in (_home() / "vectors").glob("*/store.json"))
    if model is not None:
        stores = [p for p in stores if model in {p.name, *_model_names(p)}]
    if len(stores) != 1:
        found = ", ".join(p.parent.name for p in sorted((_home() / "vectors").glob("*/store.json"))) or "none"
        which = f"for model {model!r} " if model is not None else ""
        _fail(f"no single vector store {which}under {_home() / 'vectors'} (found: {found}); say which with --store")
    return stores[0], index or _home() / "index" / stores[0].name


def _model_names(store: Path) -> set[str]:
    """The store's model id and the model's name (the id before its version, `name@digest`)."""
    model_id = str(json.loads((store / "store.json").read_text()).get("model_id", ""))
    return {model_id, model_id.split("@")[0]}


StoreOption = Annotated[
    Path | None, typer.Option("--store", help="Vector store folder [default: the one in $VITRINE_HOME/vectors/].")
]
IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index folder [default: $VITRINE_HOME/index/<store name>].")
]
BudgetOption = Annotated[str, typer.Option("--memory-budget", help="Memory the index may use, e.g. 2GB, 512MB.")]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Pick the vector store of this model id or model name.")
]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _build(store_dir: Path, index_dir: Path, plan_for: str | None, budget: str, as_json: bool) -> None:
    from index.build import save_from_store
    from index.engines import EngineSpec, default_nlist
    from index.vector_store import VectorStore

    try:
        store = VectorStore.open(store_dir)
        count = store.count()
        plan = plan_index(count, store.dim, parse_size(budget))
        if plan_for and plan_for != "auto" and plan_for != plan.spec.kind:
            spec = EngineSpec(kind=plan_for, nlist=default_nlist(count))  # type: ignore[arg-type]
            plan = IndexPlan(
                spec, plan.vectors_in_memory, 0, f"{plan_for} as asked (the planner chose {plan.spec.kind})"
            )
        err.print(f"[bold]{plan.spec.kind}[/]: {plan.reason}")
        columns = [TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        covered = store.last_segment  # what the saved index covers: later segments are replayed on open
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("index", total=count)
            indexed = save_from_store(
                store, plan, index_dir, {"store_segment": covered}, lambda done: progress.advance(task, done)
            )
    except (IndexError_, ValueError) as exc:
        _fail(str(exc))
    summary = {"index": str(index_dir), "count": indexed, "model_id": store.model_id, **plan.to_json()}
    print(json.dumps(summary) if as_json else f"indexed {indexed:,} vectors into {index_dir}")


@index_app.command("build")
def index_build(
    store: StoreOption = None,
    index: IndexOption = None,
    model: ModelOption = None,
    memory_budget: BudgetOption = "2GB",
    kind: Annotated[str, typer.Option(help="auto, flat, ivf-sq8 or ivf-pq.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan and result as JSON.")] = False,
) -> None:
    """Choose an index for the catalog size and memory budget, say why, and build it from the vector store."""
    _build(*_locations(store, index, model), kind, memory_budget, as_json)


@index_app.command("rebuild")
def index_rebuild(
    store: StoreOption = None,
    index: IndexOption = None,
    model: ModelOption = None,
    memory_budget: BudgetOption = "2GB",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recreate the index from the vector store (the source of truth), e.g. after corruption or a model change."""
    _build(*_locations(store, index, model), "auto", memory_budget, as_json)


@index_app.command("compact")
def index_compact(
    store: StoreOption = None,
    index: IndexOption = None,
    model: ModelOption = None,
    memory_budget: BudgetOption = "2GB",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Merge the vector store's files into one (superseded rows and tombstones dropped), then rebuild the index."""
    from index.vector_store import VectorStore

    store_dir, index_dir = _locations(store, index, model)
    try:
        result = VectorStore.open(store_dir).compact("full")
    except IndexError_ as exc:
        _fail(str(exc))
    err.print(
        f"{result['files']:,} files, {result['rows']:,} rows → {result['files_after']} file, "
        f"{result['rows_after']:,} rows"
    )
    _build(store_dir, index_dir, "auto", memory_budget, as_json)


@index_app.command("info")
def index_info(index: IndexOption = None, model: ModelOption = None) -> None:
    """Print the current index manifest (model, dimension, kind, count, checksums)."""
    from index.persistence import read_manifest

    try:
        print(json.dumps(read_manifest(index or _locations(None, None, model)[1]), indent=2))
    except IndexError_ as exc:
        _fail(str(exc))

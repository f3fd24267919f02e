"""`vitrine pairs export|import`: confirmed pairs (customer photo, product) as a CSV file with photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalog.workspace import Workspace
from vision.model_store import chosen_model

err = Console(stderr=True)
pairs_app = typer.Typer(
    help="Confirmed pairs (customer photo, product): export and import them as CSV with photos.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _progress(verb: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{verb}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@pairs_app.command("export")
def pairs_export(
    csv_file: Annotated[Path, typer.Argument(help="The CSV to write; photos go to photos/ beside it.")],
    label: Annotated[
        list[str] | None, typer.Option(help="Only pairs with this label: offered, accepted, rejected (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Write every confirmed pair as `photo,vendor,sku,label,created_at,request`, with its photo."""
    from catalog.db import make_engine, session_factory
    from workflow.pairs import LABELS, list_pairs
    from workflow.pairs_io import export_pairs

    labels = tuple(label or LABELS)
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        _fail(f"unknown label {', '.join(unknown)}; use {', '.join(LABELS)}")
    workspace = Workspace.from_env()
    engine = make_engine(workspace.database_url)
    sessions = session_factory(engine)
    try:
        total = len(list_pairs(sessions, workspace, labels))
        with _progress("exporting") as progress:
            task = progress.add_task("export", total=total)
            summary = export_pairs(
                sessions, workspace, csv_file, labels, progress=lambda done: progress.update(task, completed=done)
            )
    finally:
        engine.dispose()
    data = summary.to_json()
    if as_json:
        print(json.dumps(data))
        return
    err.print(f"{data['pairs']:,} pairs and {data['photos']:,} photos written to {csv_file}")
    if data["missing_photos"]:
        err.print(f"  left out {data['missing_photos']:,} pairs whose stored photo is missing")


@pairs_app.command("import")
def pairs_import(
    csv_file: Annotated[Path, typer.Argument(help="A CSV with the columns photo,vendor,sku (paths relative to it).")],
    views: Annotated[
        bool, typer.Option("--views/--no-views", help="Also make each imported pair a customer view of its product.")
    ] = True,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="The catalog's model, for --views (default: $VITRINE_MODEL)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary and every rejected row as JSON.")] = False,
) -> None:
    """Import confirmed pairs: bad photos and unknown products are rejected with a reason; a second run adds nothing."""
    from catalog.db import make_engine, session_factory
    from index.errors import IndexMismatch, IndexNotFound
    from vision.embedder import open_embedder
    from vision.errors import ModelUnavailable
    from workflow.customer_views import offline_target
    from workflow.pairs_io import PairsFileError, count_rows, import_pairs
    from workflow.settings import Settings

    workspace = Workspace.from_env()
    try:
        total = count_rows(csv_file)
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {csv_file}: {exc}")
    target = None
    if views:
        try:
            target = offline_target(workspace, open_embedder(chosen_model(model), "onnx"))
        except (ModelUnavailable, IndexMismatch, IndexNotFound) as exc:
            _fail(f"{exc} (or import with --no-views)")
    engine = make_engine(workspace.database_url)
    try:
        with _progress("importing") as progress:
            task = progress.add_task("import", total=total)
            summary = import_pairs(
                csv_file,
                session_factory(engine),
                workspace,
                Settings.max_upload_bytes,  # the web app's upload limits
                Settings.max_upload_pixels,
                views=target,
                progress=lambda done: progress.update(task, completed=done),
            )
    except PairsFileError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    data = summary.to_json()
    if as_json:
        print(json.dumps(data))
        return
    err.print(
        f"{data['rows']:,} rows: {data['imported']:,} imported, {data['already_present']:,} already present, "
        f"{data['rejected']:,} rejected in {data['duration_s']:.1f} s"
    )
    if data["views"]:
        err.print("  customer views: " + ", ".join(f"{n:,} {status}" for status, n in sorted(data["views"].items())))
    for reject in data["rejects"][:20]:
        err.print(f"  line {reject['line']}: {reject['reason']}")
    if len(data["rejects"]) > 20:
        err.print(f"  ... and {len(data['rejects']) - 20:,} more (see --json)")

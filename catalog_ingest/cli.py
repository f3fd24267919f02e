"""`vitrine ingest`: a vendor catalog in, with a progress bar, a summary and a reject report."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from catalog.workspace import Workspace, safe_name
from catalog_ingest.errors import CatalogError
from vision.model_store import chosen_model

err = Console(stderr=True)

ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Embedding model (default: $VITRINE_MODEL, else vit-b-32-laion2b).")
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def ingest_command(
    catalog: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file, or a zip with one of them and images.")],
    vendor: Annotated[str, typer.Option(help="Vendor name (created if new).")],
    model: ModelOption = None,
    mapping: Annotated[Path | None, typer.Option(help="TOML column mapping for files with other headers.")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Remove the vendor's products absent from this file.")] = False,
    allow_host: Annotated[
        list[str] | None, typer.Option(help="Let image URLs reach this host/address though it is not public.")
    ] = None,
    near_duplicates: Annotated[float, typer.Option(help="Report same-vendor images above this cosine.")] = 0.97,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary, with every rejected row, as JSON.")
    ] = False,
) -> None:
    """Ingest a vendor catalog: bad rows are reported with reasons, good ones become searchable products."""
    from catalog_ingest.memory import tune_allocator_for_batches

    tune_allocator_for_batches()  # this process only ingests: before threads start and pyarrow loads
    from catalog_ingest.images import FetchPolicy
    from catalog_ingest.ingest import IngestOptions, ingest_catalog, load_mapping
    from migrations.runner import SchemaError
    from vision.embedder import open_embedder
    from vision.errors import ModelUnavailable

    workspace = Workspace.from_env()
    try:
        options = IngestOptions(
            mapping=load_mapping(mapping),
            sync=sync,
            near_duplicate_threshold=near_duplicates,
            fetch=FetchPolicy(allow_hosts=frozenset(allow_host or ())),
        )
        embedder = open_embedder(chosen_model(model), "onnx")
    except (CatalogError, ModelUnavailable, SchemaError) as exc:
        _fail(str(exc))
    from catalog_ingest.readers import count_records

    try:
        total = count_records(catalog)
    except CatalogError as exc:
        _fail(str(exc))
    columns = [
        TextColumn("[bold]ingesting[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TextColumn("{task.fields[rate]:.1f} images/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("ingest", total=total, rate=0.0)
        started = time.perf_counter()

        def report(rows: int, images: int) -> None:
            progress.update(task, completed=rows, rate=images / max(time.perf_counter() - started, 1e-9))

        try:
            summary = ingest_catalog(catalog, vendor, embedder, workspace, options, progress=report)
        except (CatalogError, SchemaError) as exc:
            _fail(str(exc))
    data = summary.to_json()
    report_base = _write_reports(workspace, data)
    if as_json:
        print(json.dumps(data))
        return
    err.print(
        f"{data['rows']:,} rows: {data['accepted']:,} new, {data['updated']:,} updated, "
        f"{data['unchanged']:,} unchanged, {data['removed']:,} removed, {data['rejected']:,} rejected; "
        f"{data['images_embedded']:,} images embedded in {data['duration_s']:.1f} s ({data['images_per_s']:.1f}/s)"
    )
    for reason, count in sorted(data["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
        err.print(f"  rejected {count:>5}: {reason}")
    if data["rejected"]:
        err.print(f"reject report: {report_base}.csv and {report_base}.json")


def _write_reports(workspace: Workspace, data: dict) -> Path:
    workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    # with_name, not with_suffix: a vendor named "acme.com" must not lose its ".com" to the suffix.
    base = workspace.reports_dir / f"ingest-{data['job_id']:06d}-{safe_name(data['vendor'])}"
    base.with_name(base.name + ".json").write_text(json.dumps(data, indent=2))
    with base.with_name(base.name + ".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["row", "line", "sku", "field", "reason"])
        writer.writeheader()
        for row in data["rejects"]:
            writer.writerow(row)
    return base

"""`vitrine ingest`: a vendor catalog in, with a progress bar, a summary and a reject report."""

from __future__ import annotations

import contextlib
import csv
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from catalog.workspace import Workspace, safe_name
from catalog_ingest.errors import CatalogError
from vision.model_store import chosen_model

if TYPE_CHECKING:
    from catalog_ingest.reembed import SourceFactory

err = Console(stderr=True)

ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Embedding model (default: $VITRINE_MODEL, else vitrine-lite2).")
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@contextlib.contextmanager
def _progress_bar(verb: str, unit: str, total: int) -> Iterator[Callable[..., None]]:
    """A bar on stderr: `unit` done of `total`, images embedded per second, elapsed time and ETA.
    Yields `report(done, images_embedded, total=None)`."""
    columns = [
        TextColumn(f"[bold]{verb}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TextColumn("{task.fields[rate]:.1f} images/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(verb, total=total, rate=0.0)
        started = time.perf_counter()

        def report(done: int, images: int, new_total: int | None = None) -> None:
            rate = images / max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=done, rate=rate, **({"total": new_total} if new_total is not None else {}))

        yield report


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
    with _progress_bar("ingesting", "rows", total) as report:
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


def reembed_command_with(*extra: SourceFactory) -> Callable[..., None]:
    """`vitrine reembed`, re-embedding the catalog's images and what each of `extra` adds (the
    `vitrine` command passes the customer views: this package may not import `workflow`)."""

    def reembed_command(
        model: Annotated[
            str,
            typer.Option(
                "--model",
                "-m",
                help="The model to move the catalog to: a name (`vitrine models list`) or a model folder.",
            ),
        ],
        batch: Annotated[
            int,
            typer.Option(help="Images embedded and written to the store together (a crash loses one batch at most)."),
        ] = 128,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Re-embed images the store already has a vector for (e.g. images changed since it was written).",
            ),
        ] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before starting.")] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the summary, with each failed image and why, as JSON.")
        ] = False,
    ) -> None:
        """Move the data folder's catalog to another model, without re-ingesting the vendors' files.

        Use it after a model change (e.g. `demo` to the default `vitrine-lite2`): a catalog serves only with its model.

        Every stored product image and customer view is embedded with --model into that model's vector store.

        Then its index is published: `vitrine serve --model NAME` and `vitrine search --model NAME` work at once.

        The old model's store and index stay as they were: the data folder keeps serving with either model.

        Images already in the store are skipped, so a second run (or one after a crash) does only what is left.

        A missing or unreadable image file is reported and the others go on; the exit status is then 1.

        Catalog images are embedded from the 256 px copies ingest kept (re-ingest a file to embed originals).
        """
        from catalog.db import make_engine, session_factory
        from catalog_ingest.reembed import Reembedder, ReembedError
        from index.errors import IndexError_
        from vision.embedder import open_embedder
        from vision.errors import ModelUnavailable

        workspace = Workspace.from_env()
        try:
            embedder = open_embedder(model, "onnx")  # a learned base name means its active version
        except ModelUnavailable as exc:
            _fail(str(exc))
        manifest = embedder.manifest
        engine = make_engine(workspace.database_url)
        try:
            try:
                reembedder = Reembedder(workspace, session_factory(engine), embedder, extra, batch, force)
                plan = reembedder.plan()
            except (ReembedError, IndexError_) as exc:
                _fail(str(exc))
            counts = plan.counts
            if (plan.to_embed or plan.to_remove) and not yes:
                if as_json:
                    _fail("re-embedding with --json needs --yes")
                what = ", ".join(f"{c.to_embed:,} {kind.replace('_', ' ')}s" for kind, c in counts.items())
                question = (
                    f"Embed {what} with {manifest.name} ({manifest.model_id}) into {reembedder.directory}"
                    + (f", removing {plan.to_remove:,} vectors nothing uses" if plan.to_remove else "")
                    + "?"
                )
                if not typer.confirm(question, err=True):
                    raise typer.Exit(1)
            with _progress_bar("re-embedding", "images", plan.to_embed) as report:
                try:
                    summary = reembedder.run(progress=report)
                except (ReembedError, IndexError_) as exc:
                    _fail(str(exc))
        finally:
            engine.dispose()
        data = summary.to_json()
        if summary.failed:
            data["report"] = str(_write_reembed_report(workspace, data))
        if as_json:
            print(json.dumps(data))
        else:
            _print_reembed(data, model)
        if summary.failed:
            raise typer.Exit(1)

    return reembed_command


def _write_reembed_report(workspace: Workspace, data: dict) -> Path:
    workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = workspace.reports_dir / f"reembed-{safe_name(data['model_id'])}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def _print_reembed(data: dict, model: str) -> None:
    parts = []
    for kind in ("catalog_image", "customer_view"):
        if kind in data:
            figures = data[kind]
            parts.append(
                f"{kind.replace('_', ' ')}s: {figures['embedded']:,} embedded, {figures['skipped']:,} already there, "
                f"{figures['failed']:,} failed"
            )
    err.print(f"{data['model']} ({data['model_id']}): " + "; ".join(parts))
    index = data["index"]
    err.print(
        f"{data['images_embedded']:,} images in {data['duration_s']:.1f} s ({data['images_per_s']:.1f}/s); "
        f"{data['vectors_removed']:,} unused vectors removed; index {index['index_type']} "
        f"({index['mode']}, {index['count']:,} vectors)"
    )
    for reason, count in data["failed_by_reason"].items():
        err.print(f"  failed {count:>5}: {reason}")
    if data["images_failed"]:
        err.print(f"every failed image: {data['report']}")
    err.print(f"serve it with `vitrine serve --model {model}`")

"""`vitrine stores import` and `vitrine stock import`: a vendor's stores and stock per store from files.

The same code the /vendor/stores page and the vendor API run, for a back office that prefers a cron
job on the server. Rejected rows are printed (or listed in --json) with row number and reason, and
the exit status is 1 when any row was rejected, so a script notices.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from catalog.db import Vendor, make_engine, session_factory
from catalog.workspace import Workspace, safe_name
from catalog_ingest.errors import CatalogError

err = Console(stderr=True)
stores_app = typer.Typer(help="A vendor's stores (code, name, address, position, opening hours).", no_args_is_help=True)
stock_app = typer.Typer(help="Stock per store (store,sku,quantity), as a snapshot or a delta.", no_args_is_help=True)

VendorOption = Annotated[str, typer.Option("--vendor", help="The vendor's name (as `vitrine ingest --vendor`).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result, with the rejected rows, as JSON.")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _vendor_id(session, name: str) -> int:  # type: ignore[no-untyped-def]
    vendor_id = session.scalar(select(Vendor.id).where(Vendor.name == name))
    if vendor_id is None:
        _fail(f"no vendor named {name!r} (vendors come with their first catalog: vitrine ingest --vendor)")
    return int(vendor_id)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}[/]"),
        TextColumn("{task.completed:,.0f} rows"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@stores_app.command("import")
def stores_import(
    file: Annotated[
        Path, typer.Argument(help="CSV: code,name,address,postcode,city,country,lat,lon,opening_hours,phone,timezone")
    ],
    vendor: VendorOption,
    as_json: JsonOption = False,
) -> None:
    """Create or update the vendor's stores from a CSV (code, name, lat and lon required; the same code updates)."""
    from catalog_ingest.stores import import_stores

    if not file.is_file():
        _fail(f"no file {file}")
    engine = make_engine(Workspace.from_env().database_url)
    try:
        with session_factory(engine)() as session:
            vendor_id = _vendor_id(session, vendor)
            try:
                result = import_stores(session, vendor_id, file)
            except CatalogError as exc:
                _fail(str(exc))
    finally:
        engine.dispose()
    data = result.to_json()
    if as_json:
        print(json.dumps(data))
    else:
        err.print(
            f"{data['rows']:,} rows: {data['created']:,} stores created, {data['updated']:,} updated, "
            f"{data['rejected']:,} rows rejected"
        )
        for reject in data["rejects"]:
            err.print(
                f"  row {reject['row']} (line {reject['line']}) {reject['code']!r}: "
                f"{reject['field']}: {reject['reason']}"
            )
    if data["rejected"]:
        raise typer.Exit(1)


@stock_app.command("import")
def stock_import(
    file: Annotated[Path, typer.Argument(help="CSV with the columns store,sku,quantity")],
    vendor: VendorOption,
    delta: Annotated[
        bool,
        typer.Option(
            "--delta",
            help="Set only the listed rows. Without it the file is a snapshot: "
            "the stores it names lose the rows it does not list.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Stock per store from a file, streamed and written in bulk; bad rows reported, good rows applied.

    The full reject list goes to the data folder's reports/ as CSV."""
    from catalog_ingest.stock import StockReject, import_stock, one_import_per_vendor

    if not file.is_file():
        _fail(f"no file {file}")
    workspace = Workspace.from_env()
    workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    report_path = workspace.reports_dir / f"stock-{safe_name(vendor)}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    engine = make_engine(workspace.database_url)
    try:
        with session_factory(engine)() as session, report_path.open("w", newline="") as report, _progress() as bar:
            writer = csv.DictWriter(report, fieldnames=["row", "line", "store", "sku", "reason"])
            writer.writeheader()
            task = bar.add_task("delta" if delta else "snapshot", total=None, rate=0.0)
            started = time.perf_counter()

            def progress(rows: int) -> None:
                bar.update(task, completed=rows, rate=rows / max(time.perf_counter() - started, 1e-9))

            def on_reject(item: StockReject) -> None:
                writer.writerow(item.to_json())

            vendor_id = _vendor_id(session, vendor)
            try:
                with one_import_per_vendor(workspace, vendor_id, wait=True):  # after one running, if any
                    result = import_stock(
                        session, vendor_id, file, "delta" if delta else "snapshot", progress, on_reject
                    )
            except CatalogError as exc:
                _fail(str(exc))
    finally:
        engine.dispose()
    data = result.to_json()
    if result.rejected:
        data["report"] = str(report_path)
    else:
        report_path.unlink(missing_ok=True)
    if as_json:
        print(json.dumps(data))
    else:
        err.print(
            f"{data['rows']:,} rows ({data['mode']}): {data['applied']:,} applied, {data['rejected']:,} rejected, "
            f"{data['removed']:,} removed, {data['stores']:,} stores, in {data['duration_s']:.1f} s "
            f"({data['rows_per_s']:,.0f} rows/s)"
        )
        for reason, count in data["rejected_by_reason"].items():
            err.print(f"  rejected {count:>7,}: {reason}")
        if result.rejected:
            err.print(f"every rejected row: {report_path}")
    if result.rejected:
        raise typer.Exit(1)

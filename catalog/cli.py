"""`vitrine search`, `vitrine doctor` and `vitrine db ...`: the catalog and its database, from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from catalog.workspace import Workspace
from vision.model_store import chosen_model

err = Console(stderr=True)
db_app = typer.Typer(help="The database schema: where it stands and bringing it up to date.", no_args_is_help=True)

ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Embedding model (default: $VITRINE_MODEL, else vitrine-lite2).")
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def search_command(
    photo: Annotated[Path | None, typer.Argument(help="A photo to search with.")] = None,
    text: Annotated[str | None, typer.Option(help="Words to search with (alone or with the photo).")] = None,
    k: Annotated[int, typer.Option(help="Products to return.")] = 10,
    model: ModelOption = None,
    min_price: Annotated[float | None, typer.Option(help="Lowest price.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Highest price.")] = None,
    category: Annotated[list[str] | None, typer.Option(help="Only this category (repeatable).")] = None,
    vendor: Annotated[list[str] | None, typer.Option(help="Only this vendor (repeatable).")] = None,
    in_stock: Annotated[bool | None, typer.Option("--in-stock/--out-of-stock", help="Stock filter.")] = None,
    text_weight: Annotated[float, typer.Option(help="Weight of the words when both are given.")] = 0.3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find the products a customer would be offered for a photo and/or words."""
    import numpy as np

    from catalog.catalog_index import CatalogIndex
    from catalog.db import make_engine, session_factory
    from catalog.product_search import search_products
    from index.filters import SearchFilter
    from vision.embedder import l2_normalise, open_embedder
    from vision.errors import ImageRejected, ModelUnavailable
    from vision.pipeline import load_pixels

    if photo is None and not text:
        _fail("give a photo, --text, or both")
    try:
        embedder = open_embedder(chosen_model(model), "onnx")
        parts = []
        if photo is not None:
            parts.append(
                (
                    1.0 - (text_weight if text else 0.0),
                    embedder.embed_pixels(load_pixels(photo, embedder.manifest.preprocess)[None])[0],
                )
            )
        if text:
            parts.append((text_weight if photo is not None else 1.0, embedder.embed_texts([text])[0]))
        query = l2_normalise(np.sum([w * v for w, v in parts], axis=0)[None])[0]
        search_filter = SearchFilter.of(
            min_price=min_price, max_price=max_price, categories=category, vendors=vendor, in_stock=in_stock
        )
    except (ImageRejected, ModelUnavailable, ValueError) as exc:
        _fail(str(exc))
    workspace = Workspace.from_env()
    engine = make_engine(workspace.database_url)
    index = CatalogIndex(workspace, embedder.manifest.model_id, embedder.manifest.embed_dim)
    hits = search_products(index, session_factory(engine), query, k, search_filter)
    index.close()
    if as_json:
        print(json.dumps([h.to_json() for h in hits]))
        return
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:>3}. {hit.score:.3f}  {hit.vendor}/{hit.sku}  {hit.title[:70]}  {hit.price} {hit.currency}")


def doctor_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Check the database's integrity, and that every product image has a vector and every vector a
    product, in store and index; report a corrupt index with the command that rebuilds it. Exit 1 if not."""
    from sqlalchemy.exc import SQLAlchemyError

    from catalog.doctor import check_workspace
    from index.errors import IndexError_

    try:
        report = check_workspace(Workspace.from_env())
    except (SQLAlchemyError, IndexError_, OSError, ValueError) as exc:  # e.g. a file too damaged to open at all
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]
        report = {"healthy": False, "error": f"{type(exc).__name__}: {reason}", "models": []}
    if as_json:
        print(json.dumps(report))
    else:
        if "error" in report:
            err.print(f"[bold red]cannot check:[/] {report['error']}")
        database = report.get("database")
        if database is not None:
            problems = "; ".join(database["problems"])
            err.print(f"database {database['check']}: " + ("ok" if database["ok"] else f"[bold red]{problems}[/]"))
        for model in report["models"]:
            index = model["index"]
            if index["status"] != "ok":
                err.print(f"{model['model_id']}: [bold red]index {index['status']}[/]: {index['error']}")
                err.print(f"  fix: {index['fix']}")
            drift = (model["index_missing"]["count"] or 0) + (model["index_extra"]["count"] or 0)
            err.print(
                f"{model['model_id']}: {model['images_in_database']} images, "
                f"{model['vectors_in_store']:,} stored vectors, {model['vectors_in_index']} indexed; "
                f"without vector {model['images_without_vector']['count']}, "
                f"without product {model['vectors_without_product']['count']}, index drift {drift}"
            )
        err.print("healthy" if report["healthy"] else "[bold red]problems found[/]")
    if not report["healthy"]:
        raise typer.Exit(1)


@db_app.command("current")
def db_current(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the database's revision, the newest this version knows, and whether an upgrade is due."""
    from sqlalchemy import create_engine

    from migrations.runner import status

    engine = create_engine(Workspace.from_env().database_url)
    try:
        found = status(engine)
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps({"current": found.current, "head": found.head, "state": found.state}))
        return
    current = found.current or ("none (0.1.0 schema)" if found.has_tables else "none (empty database)")
    print(f"current: {current}\nhead:    {found.head}\nstate:   {found.state}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations the database lacks (a second run has nothing to do). Back up the data folder first."""
    from sqlalchemy import create_engine

    from migrations.runner import status, upgrade

    engine = create_engine(Workspace.from_env().database_url)
    try:
        found = status(engine)
        if found.state == "current":
            err.print(f"the database is already at {found.head}: nothing to do")
            return
        if found.state == "ahead":
            err.print(f"[bold red]error:[/] the database is at {found.current}, newer than this version ({found.head})")
            raise typer.Exit(2)
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    origin = before or ("the 0.1.0 schema" if found.has_tables else "an empty database")
    err.print(f"upgraded the database from {origin} to {after}")


def backup_command(
    destination: Annotated[Path, typer.Argument(help="A new or empty folder, outside the data folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Back up the data folder (database, vector stores, indexes, images, secret, outbox, models) while the
    app and ingests run; every file's sha256 goes into DEST/backup.json."""
    from catalog.backup import BackupError, backup

    try:
        summary = backup(Workspace.from_env(), destination, progress=err.print)
    except BackupError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(summary))


def restore_command(
    source: Annotated[Path, typer.Argument(help="A folder written by `vitrine backup`.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest summary and doctor's report as JSON.")
    ] = False,
) -> None:
    """Check a backup's files against its manifest, restore it into an empty data folder ($VITRINE_HOME),
    then run `vitrine doctor` on the result (exit 1 if it is not healthy)."""
    from catalog.backup import BackupError, restore
    from catalog.doctor import check_workspace

    workspace = Workspace.from_env()
    try:
        manifest = restore(source, workspace, progress=err.print)
    except BackupError as exc:
        _fail(str(exc))
    report = check_workspace(workspace)
    if as_json:
        summary = {k: v for k, v in manifest.items() if k != "files"}
        print(json.dumps({"restored": summary, "doctor": report}))
    err.print("doctor: " + ("healthy" if report["healthy"] else "[bold red]problems found[/] (run `vitrine doctor`)"))
    if not report["healthy"]:
        raise typer.Exit(1)

"""`vitrine ingest`, `vitrine search` and `vitrine doctor`."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from catalog_ingest.errors import CatalogError
from catalog_ingest.workspace import Workspace, safe_name

err = Console(stderr=True)

ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Embedding model [default: $VITRINE_MODEL or vit-b-32-laion2b].")
]


def _model(name: str | None) -> str:
    from vision.model_store import DEFAULT_MODEL

    return name or os.environ.get("VITRINE_MODEL") or DEFAULT_MODEL


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
        embedder = open_embedder(_model(model), "onnx")
    except (CatalogError, ModelUnavailable) as exc:
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
        except CatalogError as exc:
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

    from catalog_ingest.catalog_index import CatalogIndex
    from catalog_ingest.db import make_engine, session_factory
    from catalog_ingest.search import search_products
    from index.filters import SearchFilter
    from vision.embedder import l2_normalise, open_embedder
    from vision.errors import ImageRejected, ModelUnavailable
    from vision.pipeline import load_pixels

    if photo is None and not text:
        _fail("give a photo, --text, or both")
    try:
        embedder = open_embedder(_model(model), "onnx")
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
    """Check that every product image has a vector and every vector a product, in store and index. Exit 1 if not."""
    from catalog_ingest.doctor import check_workspace

    report = check_workspace(Workspace.from_env())
    if as_json:
        print(json.dumps(report))
    else:
        for model in report["models"]:
            drift = model["index_missing"]["count"] + model["index_extra"]["count"]
            err.print(
                f"{model['model_id']}: {model['images_in_database']:,} images, "
                f"{model['vectors_in_store']:,} stored vectors, {model['vectors_in_index']:,} indexed; "
                f"without vector {model['images_without_vector']['count']}, "
                f"without product {model['vectors_without_product']['count']}, index drift {drift}"
            )
        err.print("healthy" if report["healthy"] else "[bold red]mismatch found[/]")
    if not report["healthy"]:
        raise typer.Exit(1)


def bench_ingest(
    rows: Annotated[
        int, typer.Option(help="Rows (one distinct ~1200x1200 JPEG each) in the generated catalog.")
    ] = 10000,
    model: Annotated[str, typer.Option("--model", "-m", help="Model or open_clip architecture.")] = "ViT-B-32",
    random_weights: Annotated[bool, typer.Option("--random-weights/--trained-weights", help="Random weights.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ingest throughput against the embedder's own rate (same run), and the ingest process's peak memory."""
    from catalog_ingest.bench import run_ingest_bench
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
    from catalog_ingest.publish_bench import run_publish_bench
    from index.bench import parse_count

    if not 0 < update_share <= 1:
        _fail("--update-share must be above 0 and at most 1")
    result = run_publish_bench(parse_count(n), dim, update_share, log=lambda m: err.print(m, style="dim"))
    print(json.dumps(result, indent=None if as_json else 2))


def demo_catalog_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (one sub-folder per vendor).")],
    seed: Annotated[int, typer.Option(help="Generator seed: the same seed writes the same catalog.")] = 7,
    products: Annotated[int, typer.Option(help="Number of products, spread over the vendors.")] = 2000,
) -> None:
    """Generate a demo catalog: vendor CSV files and clean product shots that `vitrine ingest` accepts."""
    from catalog_ingest.demo_catalog import write_demo_catalog

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
    from catalog_ingest.demo_catalog import DemoCatalog, write_queries

    try:
        opened = DemoCatalog.open(catalog)
    except FileNotFoundError as exc:
        _fail(str(exc))
    queries = write_queries(opened, out, seed, photos, progress=lambda d, t: err.print(f"{d}/{t}", style="dim"))
    err.print(f"{len(queries)} customer photos and the text queries in {out}")


def eval_command(
    catalog: Annotated[Path | None, typer.Option(help="Catalog folder (<vendor>/catalog.csv files).")] = None,
    queries: Annotated[Path | None, typer.Option(help="Query folder (photos.csv, texts.csv).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model to evaluate.")] = "demo",
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Also run the colour-histogram and random baselines.")
    ] = True,
    products: Annotated[int, typer.Option(help="Products in the standard set (without --catalog).")] = 2000,
    photos: Annotated[int, typer.Option(help="Customer photos in the standard set (without --queries).")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Search quality: photo → product recall@1/5/10 and MRR, text → product precision@10, per category.

    Without --catalog/--queries, builds (once, under $VITRINE_HOME/eval) the standard demo set from fixed seeds.
    """
    from catalog_ingest.evaluate import HEADLINE, open_eval_set, run_evaluation, standard_eval_set
    from vision.errors import ModelUnavailable
    from vision.model_store import vitrine_home

    if (catalog is None) != (queries is None):
        _fail("give both --catalog and --queries, or neither (the standard demo set)")
    root = vitrine_home() / "eval"

    def log(message: str) -> None:
        err.print(message, style="dim")

    try:
        if catalog is not None and queries is not None:
            evalset = open_eval_set(catalog, queries)
        else:
            evalset = standard_eval_set(root, products, photos, log)
        result = run_evaluation(evalset, root, model, baselines, log=log)
    except (FileNotFoundError, ModelUnavailable, CatalogError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(result))
        return
    from rich.table import Table

    labels = {"photo_recall_at_1": "R@1", "photo_recall_at_5": "R@5", "photo_recall_at_10": "R@10"}
    labels |= {"photo_mrr": "MRR", "text_precision_at_10": "text P@10"}
    table = Table("embedder", *(labels[key] for key in HEADLINE), title="photo → product (R, MRR), text → product")
    rows = {model: result, **result.get("baselines", {})}
    for name, figures in rows.items():
        table.add_row(name, *(f"{figures[key]:.3f}" for key in HEADLINE))
    Console().print(table)

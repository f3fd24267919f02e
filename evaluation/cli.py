"""`vitrine eval`: search quality on the demo set or a given catalog and queries, against baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from catalog_ingest.errors import CatalogError
from vision.model_store import DEFAULT_MODEL

err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def eval_command(
    catalog: Annotated[Path | None, typer.Option(help="Catalog folder (<vendor>/catalog.csv files).")] = None,
    queries: Annotated[Path | None, typer.Option(help="Query folder (photos.csv, texts.csv).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model to evaluate.")] = DEFAULT_MODEL,
    grocery: Annotated[
        bool,
        typer.Option(
            "--grocery",
            help="Real phone photos: the grocery set from ../shared/data/grocery-store (81 catalog shots, the 296 "
            "validation photos as queries), laid out under $VITRINE_HOME/eval/grocery; its train split is written "
            "there as pairs/train.csv for --pairs.",
        ),
    ] = False,
    baselines: Annotated[
        bool, typer.Option("--baselines/--no-baselines", help="Also run the colour-histogram and random baselines.")
    ] = True,
    products: Annotated[int, typer.Option(help="Products in the standard set (without --catalog).")] = 2000,
    photos: Annotated[int, typer.Option(help="Customer photos in the standard set (without --queries).")] = 500,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="Confirmed pairs (CSV photo,vendor,sku) to learn from first, in the evaluation's own workspace; "
            "the figures are then after learning, with before_learning, with_customer_views and with_adaptation.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Search quality: photo → product recall@1/5/10 and MRR, text → product precision@10, per category.

    Without --catalog/--queries, builds (once, under $VITRINE_HOME/eval) the standard demo set from fixed seeds;
    --grocery measures real phone photos instead.
    """
    from evaluation.evaluate import HEADLINE, open_eval_set, run_evaluation, standard_eval_set
    from learning.versions import LearningError
    from vision.errors import ModelUnavailable
    from vision.model_store import vitrine_home

    if (catalog is None) != (queries is None):
        _fail("give both --catalog and --queries, or neither (the standard demo set)")
    if grocery and catalog is not None:
        _fail("give either --grocery or --catalog/--queries")
    root = vitrine_home() / "eval"

    def log(message: str) -> None:
        err.print(message, style="dim")

    try:
        if grocery:
            from evaluation.grocery import DEFAULT_SOURCE, prepare_grocery

            prepared = prepare_grocery(DEFAULT_SOURCE, root / "grocery")
            log(f"grocery set in {prepared.catalog.parent} (train pairs: {prepared.pairs})")
            evalset = open_eval_set(prepared.catalog, prepared.queries)
        elif catalog is not None and queries is not None:
            evalset = open_eval_set(catalog, queries)
        else:
            evalset = standard_eval_set(root, products, photos, log)
        if pairs is not None and not pairs.is_file():
            raise FileNotFoundError(f"no pairs file {pairs}")
        result = run_evaluation(evalset, root, model, baselines, log=log, pairs=pairs)
    except (FileNotFoundError, ModelUnavailable, CatalogError, ValueError, LearningError) as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(result))
        return
    from rich.table import Table

    labels = {"photo_recall_at_1": "R@1", "photo_recall_at_5": "R@5", "photo_recall_at_10": "R@10"}
    labels |= {"photo_mrr": "MRR", "text_precision_at_10": "text P@10"}
    table = Table("embedder", *(labels[key] for key in HEADLINE), title="photo → product (R, MRR), text → product")
    rows = {model: result, **result.get("baselines", {})}
    if pairs is not None:
        rows = {
            f"{model} before learning": result["before_learning"],
            f"{model} + customer views": result["with_customer_views"],
            f"{model} + adaptation": result["with_adaptation"],
            f"{model} after learning": result,
            **result.get("baselines", {}),
        }
    for name, figures in rows.items():
        table.add_row(name, *(f"{figures[key]:.3f}" for key in HEADLINE))
    Console().print(table)

"""Search quality on a demo catalog: photo → product recall and text → product precision, per category.

The harness goes through the product's real path: each embedder's catalog is ingested with
`ingest_catalog` into its own workspace (a rerun reuses it: unchanged rows are not embedded
again), queries are embedded like uploads are, and ranked with `search_products`. Baselines run
in the same call on the same queries: a colour histogram and the model's architecture with
random weights, so the model's figures always come with what they are measured against.

Photo queries are customer photos of catalog products (their SKU is the right answer); text
queries name a kind of product (their category is the right answer for every hit).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine

from catalog.catalog_index import CatalogIndex
from catalog.db import database_url, make_engine, session_factory
from catalog.product_search import search_products
from catalog.store_follow import catch_up
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from demo.catalog import (
    MANIFEST,
    DemoCatalog,
    PhotoQuery,
    TextQuery,
    read_queries,
    write_demo_catalog,
    write_queries,
)
from demo.products import EVAL_CATALOG_SEED, EVAL_PHOTO_SEED
from evaluation.color_histogram import ColorHistogramEmbedder, color_histogram_manifest
from learning.learn import LearnOptions, fit_adapter
from learning.versions import base_name, make_version, publish_version
from migrations.runner import upgrade
from vision.embedder import Embedder, open_embedder
from vision.manifest import ModelManifest
from vision.model_store import DEFAULT_MODEL, VERSION_MARK, ModelStore
from vision.onnx_embedder import OnnxEmbedder
from vision.pipeline import embed_sources
from workflow.customer_views import add_views, offline_target
from workflow.pairs import positive_pairs
from workflow.pairs_io import import_pairs
from workflow.settings import Settings

RANK_DEPTH = 100  # MRR counts a product found below this rank as not found
CURVE_KS = (1, 2, 3, 5, 10, 20, 30, 50, 100)
STANDARD_PRODUCTS = 2000
STANDARD_PHOTOS = 500
RANDOM_BASELINE = "demo-random"

Log = Callable[[str], None]


@dataclass(frozen=True)
class EvalSet:
    """Vendor files to ingest and the queries to run against them."""

    vendor_files: dict[str, Path]
    photos: list[PhotoQuery]
    texts: list[TextQuery]
    description: dict


def _vendor_files(catalog: Path) -> dict[str, Path]:
    """`DIR/<vendor>/catalog.csv` for every vendor folder (the layout `vitrine demo catalog` writes)."""
    files = {p.parent.name: p for p in sorted(catalog.glob("*/catalog.csv"))}
    if not files:
        raise FileNotFoundError(f"{catalog} holds no <vendor>/catalog.csv files")
    return files


def open_eval_set(catalog: Path, queries: Path) -> EvalSet:
    photos, texts = read_queries(queries)
    description = {"catalog": str(catalog.resolve()), "queries": str(queries.resolve())}
    if (catalog / MANIFEST).is_file():
        opened = DemoCatalog.open(catalog)
        description.update(catalog_seed=opened.seed, products=opened.products)
    return EvalSet(_vendor_files(catalog), photos, texts, description)


def standard_eval_set(
    root: Path,
    products: int = STANDARD_PRODUCTS,
    photos: int = STANDARD_PHOTOS,
    log: Log = lambda _: None,
) -> EvalSet:
    """The standard set from fixed seeds, generated once under `root` and reused after."""
    base = root / f"standard-s{EVAL_CATALOG_SEED}-n{products}-q{EVAL_PHOTO_SEED}-{photos}"
    catalog, queries = base / "catalog", base / "queries"
    if not (catalog / MANIFEST).is_file():
        log(f"generating the standard catalog ({products} products, seed {EVAL_CATALOG_SEED}) in {catalog}")
        write_demo_catalog(catalog, EVAL_CATALOG_SEED, products)
    if not (queries / "queries.json").is_file():
        log(f"generating {photos} customer photos (seed {EVAL_PHOTO_SEED}) in {queries}")
        write_queries(DemoCatalog.open(catalog), queries, EVAL_PHOTO_SEED, photos)
    evalset = open_eval_set(catalog, queries)
    evalset.description.update(standard=True, photo_seed=EVAL_PHOTO_SEED)
    return evalset


def workspace_for(root: Path, evalset: EvalSet, embedder: Embedder) -> Workspace:
    """Each embedder gets its own workspace per catalog: vectors of different models never share an index."""
    key = hashlib.sha256(evalset.description["catalog"].encode()).hexdigest()[:12]
    safe_id = embedder.manifest.model_id.replace("/", "_").replace("@", "-")
    return Workspace(root / "workspaces" / key / safe_id)


def up_to_date(workspace: Workspace) -> Workspace:
    """`workspace` with its database (if it has one yet) at the newest schema.

    Evaluation workspaces are the evaluator's own caches, rebuilt from the evaluation set on demand,
    so one made by an older version is upgraded here rather than refused as a user's data folder is."""
    if (workspace.home / "vitrine.db").is_file():
        engine = create_engine(database_url(workspace.home))  # the workspace's own file, never $VITRINE_DATABASE_URL
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    return workspace


def evaluate_embedder(embedder: Embedder, evalset: EvalSet, root: Path, log: Log = lambda _: None) -> dict:
    """Ingest (or reuse) the catalog for `embedder`, run every query, and return the figures."""
    workspace = up_to_date(workspace_for(root, evalset, embedder))
    began = time.perf_counter()
    for vendor, path in evalset.vendor_files.items():
        summary = ingest_catalog(path, vendor, embedder, workspace)
        if summary.rejected:
            raise ValueError(f"the catalog {path} has rejected rows: {summary.rejected[:3]}")
    ingest_s = time.perf_counter() - began
    figures = measure(embedder, evalset, workspace, log)
    figures["ingest_s"] = round(ingest_s, 2)
    return figures


def measure(embedder: Embedder, evalset: EvalSet, workspace: Workspace, log: Log = lambda _: None) -> dict:
    """Run every query against the catalog `workspace` already holds for `embedder`; the figures."""
    engine = make_engine(workspace.database_url)
    sessions = session_factory(engine)
    index = CatalogIndex(workspace, embedder.manifest.model_id, embedder.manifest.embed_dim)
    try:
        began = time.perf_counter()
        ranks = _photo_ranks(embedder, index, sessions, evalset.photos)
        precisions = _text_precisions(embedder, index, sessions, evalset.texts)
        query_s = time.perf_counter() - began
    finally:
        index.close()
        engine.dispose()
    all_ranks = [rank for _, rank in ranks]
    all_precisions = [p for _, p in precisions]
    figures = {
        "model": embedder.manifest.name,
        "model_id": embedder.manifest.model_id,
        **_photo_summary(all_ranks),
        "text_precision_at_10": _mean(all_precisions),
        "photo_queries": len(all_ranks),
        "text_queries": len(all_precisions),
        "photo_recall_curve": _curve(all_ranks),
    }
    categories = sorted({c for c, _ in ranks} | {c for c, _ in precisions})
    figures["per_category"] = {
        category: {
            **_photo_summary([r for c, r in ranks if c == category]),
            "photo_queries": sum(c == category for c, _ in ranks),
            "text_precision_at_10": _mean([p for c, p in precisions if c == category]),
        }
        for category in categories
    }
    figures["query_s"] = round(query_s, 2)
    log(
        f"{embedder.manifest.name}: photo recall@10 {figures['photo_recall_at_10']:.3f}, "
        f"MRR {figures['photo_mrr']:.3f}, text precision@10 {figures['text_precision_at_10']:.3f}"
    )
    return figures


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 4) if values else 0.0


def _curve(ranks: list[int]) -> dict[str, float]:
    array = np.asarray(ranks, dtype=np.int64)
    return {str(k): _mean(list(((array > 0) & (array <= k)).astype(float))) for k in CURVE_KS}


def _photo_summary(ranks: list[int]) -> dict:
    """Recall at 1/5/10 and MRR from the 1-based rank of the right product per query (0: not in the top 100)."""
    array = np.asarray(ranks, dtype=np.int64)
    found = array > 0
    reciprocal = np.where(found, 1.0 / np.maximum(array, 1), 0.0)
    summary = {f"photo_recall_at_{k}": _mean(list((found & (array <= k)).astype(float))) for k in (1, 5, 10)}
    summary["photo_mrr"] = _mean(list(reciprocal))
    return summary


def _photo_ranks(embedder: Embedder, index: CatalogIndex, sessions, queries: list[PhotoQuery]) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """(category, rank of the photographed product) per query, searched as an upload is."""
    out = []
    results = embed_sources(embedder, [q.file for q in queries])
    for query, result in zip(queries, results, strict=True):
        if result.vector is None:
            raise ValueError(f"query photo {query.file} could not be embedded: {result.error}")
        hits = search_products(index, sessions, result.vector[None], k=RANK_DEPTH)
        rank = next((n for n, h in enumerate(hits, 1) if h.sku == query.sku and h.vendor == query.vendor), 0)
        out.append((query.category, rank))
    return out


def _text_precisions(
    embedder: Embedder, index: CatalogIndex, sessions, queries: list[TextQuery]
) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    """(category, share of the top 10 products in the query's category) per text query."""
    if not queries:
        return []
    out = []
    vectors = embedder.embed_texts([q.text for q in queries])
    for query, vector in zip(queries, vectors, strict=True):
        hits = search_products(index, sessions, vector[None], k=10)
        out.append((query.category, sum(h.category == query.category for h in hits) / 10.0))
    return out


# --- the whole evaluation -----------------------------------------------------------------------------------

TARGETS = {"photo_recall_at_10": 0.90, "recall_at_10_vs_color_histogram": 2.0, "text_precision_at_10": 0.80}
HEADLINE = ("photo_recall_at_1", "photo_recall_at_5", "photo_recall_at_10", "photo_mrr", "text_precision_at_10")


def run_evaluation(
    evalset: EvalSet,
    root: Path,
    model: str = DEFAULT_MODEL,
    baselines: bool = True,
    store: ModelStore | None = None,
    log: Log = lambda _: None,
    pairs: Path | None = None,
    learn_options: LearnOptions | None = None,
) -> dict:
    """The model's figures at the top level and each baseline's under `baselines`, from one run.

    With `pairs` (a `photo,vendor,sku` CSV), the top level is the result after learning from them
    (see `evaluate_learning`) and `before_learning` holds the model's figures without them."""
    store = store or ModelStore()
    began = time.perf_counter()
    embedder = open_embedder(model, "onnx", store)
    result = evaluate_embedder(embedder, evalset, root, log)
    if pairs is not None:
        learned = evaluate_learning(store.resolve(model), evalset, root, pairs, learn_options, log)
        after = {**learned.pop("after_learning"), "ingest_s": result["ingest_s"]}
        result = {**after, "before_learning": result, **learned}
    result["eval_set"] = evalset.description | {"photos": len(evalset.photos), "texts": len(evalset.texts)}
    if baselines:
        result["baselines"] = {
            "color_histogram": evaluate_embedder(
                ColorHistogramEmbedder(color_histogram_manifest(embedder.manifest.preprocess.image_size[0])),
                evalset,
                root,
                log,
            ),
            "random_weights": evaluate_embedder(open_embedder(RANDOM_BASELINE, "onnx", store), evalset, root, log),
        }
        histogram = result["baselines"]["color_histogram"]["photo_recall_at_10"]
        ratio = result["photo_recall_at_10"] / histogram if histogram else float("inf")
        result["recall_at_10_vs_color_histogram"] = round(ratio, 3)
        result["targets"] = {
            name: {"target": target, "value": result[name], "met": bool(result[name] >= target)}
            for name, target in TARGETS.items()
        }
    result["duration_s"] = round(time.perf_counter() - began, 2)
    return result


# --- learning from pairs ------------------------------------------------------------------------------------


def evaluate_learning(
    model: tuple[Path, ModelManifest],
    evalset: EvalSet,
    root: Path,
    pairs: Path,
    options: LearnOptions | None = None,
    log: Log = lambda _: None,
) -> dict:
    """Learn from `pairs` in a copy of the model's evaluation workspace, and measure what each part does.

    The copy (`<workspace>+pairs-<digest of the file>`, made afresh each run) gets the pairs imported,
    then: the adapter fitted and its version built (in the evaluation's own model store,
    `root/models`, never the user's) and measured (`with_adaptation`); the pairs made customer views
    of the base model and measured (`with_customer_views`); the views carried into the learned
    version's store (re-projected) and measured (`after_learning`: both mechanisms, or the views alone
    when the learned version did not beat the model on the held-out pairs, as `vitrine learn` would not
    promote it). `learning` tells what was imported, fitted and decided."""
    parent_dir, parent = model
    embedder = OnnxEmbedder(parent_dir, parent)
    base = up_to_date(workspace_for(root, evalset, embedder))
    workspace = _fresh_copy(base, hashlib.sha256(Path(pairs).read_bytes()).hexdigest()[:12])
    engine = make_engine(workspace.database_url)
    sessions = session_factory(engine)
    try:
        log(f"importing the pairs of {pairs}")
        imported = import_pairs(
            Path(pairs), sessions, workspace, Settings.max_upload_bytes, Settings.max_upload_pixels
        ).to_json()
        if not imported["imported"] and not imported["already_present"]:
            reasons = "; ".join(r["reason"] for r in imported["rejects"][:3])
            raise ValueError(f"no pair of {pairs} could be imported ({imported['rejected']} rejected: {reasons})")
        log("fitting the adapter")
        fit = fit_adapter(workspace, sessions, parent_dir, parent, options)
        versions = ModelStore(root)
        name = f"{base_name(parent.name)}{VERSION_MARK}eval"
        version_dir, version = make_version(versions, parent_dir, parent, fit.matrix, name, {"evaluation": True})
        publish_version(workspace, parent, version, fit.matrix)
        adapted = OnnxEmbedder(version_dir, version)
        with_adaptation = measure(adapted, evalset, workspace, log)
        log("adding the pairs as customer views")
        pair_ids = [p.id for p in positive_pairs(sessions, workspace)]
        outcomes = add_views(sessions, offline_target(workspace, embedder), workspace, pair_ids, "eval")
        views: dict[str, int] = {}
        for outcome in outcomes:
            views[outcome.status] = views.get(outcome.status, 0) + 1
        with_views = measure(embedder, evalset, workspace, log)
        catch_up(workspace, version.model_id, version.embed_dim, own_writes=False)
        after = measure(adapted, evalset, workspace, log) if fit.better else with_views
    finally:
        engine.dispose()
    imported = {k: v for k, v in imported.items() if k != "rejects"}
    learning = {**fit.to_json(), "promoted": fit.better, "imported": imported, "views": views, "version": name}
    return {
        "after_learning": after,
        "with_customer_views": with_views,
        "with_adaptation": with_adaptation,
        "learning": learning,
    }


def _fresh_copy(workspace: Workspace, tag: str) -> Workspace:
    """A copy of an evaluation workspace to learn in (the original stays the 'before' catalog). The
    photo-embedding cache of an earlier copy is kept, so a rerun embeds only new photos."""
    target = workspace.home.with_name(f"{workspace.home.name}{VERSION_MARK}{tag}")
    cache = target / "learning"
    kept = target.with_name(f".{target.name}.learning")
    shutil.rmtree(kept, ignore_errors=True)
    if cache.is_dir():
        cache.rename(kept)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(workspace.home, target, ignore=shutil.ignore_patterns("tmp", "learning"))
    if kept.is_dir():
        kept.rename(cache)
    return Workspace(target)

"""`learn`: fit an adapter to the confirmed pairs, measure it on held-out photos, promote it only if better.

1. The active version of the model is the parent. Its catalog vectors come from its vector store;
   the positive pairs (`workflow.pairs.positive_pairs`) whose product is in that catalog are the
   data, each photo embedded by the parent as search would embed it (with its crop).
2. The photos are split, by photo and seeded, into training and held-out ones (`holdout`, 20%).
3. W is fitted on the training pairs (`learning.train`): rejected pairs are extra negatives.
4. The held-out photos are searched against the whole catalog (catalog images and customer views,
   less the views made from held-out photos themselves), first as it is, then re-projected by W.
   Only a strictly higher recall@1 promotes; a tie does not.
5. Promotion (`learning.versions`): the version's folder, its store re-projected from the parent's,
   its index, then the active-version pointer, last.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from catalog.db import Product
from catalog.workspace import Workspace
from learning.data import StoreVectors, embed_pair_photos, photo_key
from learning.train import SearchSpace, TrainConfig, TrainingSet, TrainResult, compare_on_holdout, train_adapter
from learning.versions import (
    LearningError,
    Progress,
    activate,
    base_name,
    learning_lock,
    make_version,
    next_version_name,
    parent_store,
    publish_version,
    quiet,
)
from vision.manifest import ModelManifest
from vision.model_store import ModelStore
from vision.onnx_embedder import OnnxEmbedder
from workflow.customer_views import active_views
from workflow.pairs import negative_pairs, positive_pairs

MIN_PAIRS = 20  # usable positive pairs: enough for a held-out share that can tell better from worse
DEFAULT_HOLDOUT = 0.2


@dataclass
class LearnOptions:
    holdout: float = DEFAULT_HOLDOUT
    epochs: int | None = None  # None: about 300 steps
    seed: int = 0
    titles: int = 2048  # catalog titles whose ranking of the catalog training keeps (text search)
    train: TrainConfig = field(default_factory=TrainConfig)

    def config(self) -> TrainConfig:
        config = TrainConfig(**{**self.train.__dict__})
        config.epochs = self.epochs if self.epochs else config.epochs
        config.seed = self.seed
        return config


@dataclass
class Fit:
    """A fitted adapter and what it did on the held-out photos."""

    parent: ModelManifest
    matrix: np.ndarray
    training: TrainResult
    before: dict
    after: dict
    pairs: dict

    @property
    def better(self) -> bool:
        return self.after["recall_at_1"] > self.before["recall_at_1"]

    def to_json(self) -> dict:
        return {
            "parent": self.parent.name,
            "parent_model_id": self.parent.model_id,
            "pairs": self.pairs,
            "training": self.training.to_json(),
            "holdout": {"before": self.before, "after": self.after},
        }


def fit_adapter(
    workspace: Workspace,
    sessions: sessionmaker,
    parent_dir: Path,
    parent: ModelManifest,
    options: LearnOptions | None = None,
    progress: Progress = quiet,
) -> Fit:
    """Steps 1-4 of the module docstring; writes nothing but the photo cache. Raises `LearningError`."""
    options = options or LearnOptions()
    if not 0.0 < options.holdout < 1.0:
        raise LearningError(f"--holdout is the share of photos held out, between 0 and 1 (not {options.holdout})")
    stored = StoreVectors.read(parent_store(workspace, parent))
    catalog = ~stored.views
    if not catalog.any():
        raise LearningError(f"the catalog of {parent.name} in {workspace.home} is empty; ingest a catalog first")
    products = np.unique(stored.products)
    in_catalog = set(stored.products[catalog].tolist())
    pairs = positive_pairs(sessions, workspace)
    usable = [p for p in pairs if p.product_id in in_catalog]
    _enough(usable, pairs, parent)
    embedder = OnnxEmbedder(parent_dir, parent)
    photos = {photo_key(p) for p in usable}
    progress("embedding pair photos", 0, len(photos))
    vectors, failed = embed_pair_photos(
        usable, embedder, workspace, lambda done: progress("embedding pair photos", done, len(photos))
    )
    usable = [p for p in usable if photo_key(p) in vectors]
    _enough(usable, pairs, parent)
    shas = sorted({p.photo_sha256 for p in usable})
    if len(shas) < 2:
        raise LearningError("learning needs pairs of at least 2 different photos (some are held out to measure)")
    held_count = min(len(shas) - 1, max(1, round(options.holdout * len(shas))))
    held = set(np.asarray(shas)[np.random.default_rng(options.seed).permutation(len(shas))[:held_count]].tolist())
    train = [p for p in usable if p.photo_sha256 not in held]
    hold = [p for p in usable if p.photo_sha256 in held]

    def index_of(product_ids: list[int] | np.ndarray) -> np.ndarray:
        return np.searchsorted(products, np.asarray(product_ids, np.int64))

    rejected_by_photo: dict[str, list[int]] = {}
    for pair in negative_pairs(sessions, workspace):
        if pair.product_id in in_catalog:
            rejected_by_photo.setdefault(pair.photo_sha256, []).append(int(index_of([pair.product_id])[0]))
    titles = _titles(sessions, products, options)
    progress("embedding catalog titles", 0, len(titles))
    text_vectors = embedder.embed_texts(titles) if titles else None
    progress("embedding catalog titles", len(titles), len(titles))
    data = TrainingSet(
        photos=np.stack([vectors[photo_key(p)] for p in train]),
        photo_product=index_of([p.product_id for p in train]),
        catalog=stored.vectors[catalog],
        catalog_product=index_of(stored.products[catalog]),
        rejected=[rejected_by_photo.get(p.photo_sha256, []) for p in train],
        photo_group=np.searchsorted(np.asarray(shas), np.asarray([p.photo_sha256 for p in train])),
        texts=text_vectors,
    )
    config = options.config()
    steps = config.steps_for(len(train))[1]
    progress("training the adapter", 0, steps)
    result = train_adapter(data, config, lambda step, total, _loss: progress("training the adapter", step, total))
    with sessions() as session:
        own_views = {v.image_id for v in active_views(session) if v.photo_sha256 in held}
    keep = ~np.isin(stored.ids, np.fromiter(own_views, np.int64, len(own_views)))
    space = SearchSpace(stored.vectors[keep], index_of(stored.products[keep]))
    queries = np.stack([vectors[photo_key(p)] for p in hold])
    before, after = compare_on_holdout(queries, index_of([p.product_id for p in hold]), space, result.matrix)
    counts = {
        "positive": len(pairs),
        "usable": len(usable),
        "not_in_catalog": len(pairs) - len([p for p in pairs if p.product_id in in_catalog]),
        "photos_failed": len(failed),
        "train": len(train),
        "holdout": len(hold),
        "train_photos": len(shas) - held_count,
        "holdout_photos": held_count,
        "rejected_negatives": sum(len(r) for r in data.rejected),
    }
    return Fit(parent, result.matrix, result, before, after, counts)


def _titles(sessions: sessionmaker, products: np.ndarray, options: LearnOptions) -> list[str]:
    """Up to `options.titles` product titles of the catalog (seeded sample): text search's stand-ins."""
    with sessions() as session:
        rows = session.execute(select(Product.id, Product.title)).all()
    known = set(products.tolist())
    titles = [title for pid, title in rows if title and pid in known]
    if len(titles) > options.titles:
        keep = np.random.default_rng(options.seed).choice(len(titles), size=options.titles, replace=False)
        titles = [titles[i] for i in sorted(keep)]
    return titles


def _enough(usable: list, pairs: list, parent: ModelManifest) -> None:
    if len(usable) < MIN_PAIRS:
        raise LearningError(
            f"learning needs at least {MIN_PAIRS} confirmed pairs (customer photo -> product) whose photo is "
            f"stored and whose product is in the catalog of {parent.name}; there are {len(usable)} "
            f"(of {len(pairs)} recorded). Operators' sent offers add pairs; `vitrine learn --pairs FILE` imports some"
        )


def learn(
    workspace: Workspace,
    sessions: sessionmaker,
    model: str,
    store: ModelStore | None = None,
    options: LearnOptions | None = None,
    progress: Progress = quiet,
) -> dict:
    """Fit, measure, and promote the learned version only if it is better; the JSON-ready outcome."""
    began = time.perf_counter()
    store = store or ModelStore()
    base = base_name(model)
    with learning_lock(workspace):
        parent_dir, parent = store.resolve(base)
        fit = fit_adapter(workspace, sessions, parent_dir, parent, options, progress)
        outcome = {"model": base, **fit.to_json(), "promoted": False}
        if not fit.better:
            outcome["reason"] = (
                f"held-out recall@1 {fit.after['recall_at_1']:.4f} does not beat {fit.before['recall_at_1']:.4f}; "
                f"{parent.name} stays active"
            )
            outcome.update(version=None, active=parent.name, model_id=parent.model_id)
        else:
            name = next_version_name(store, base)
            record = {"holdout": {"before": fit.before, "after": fit.after}, "pairs": fit.pairs["usable"]}
            _, version = make_version(store, parent_dir, parent, fit.matrix, name, {"learned": record})
            published = publish_version(workspace, parent, version, fit.matrix, progress)
            activate(store, workspace, base, parent, version, record)
            outcome.update(
                promoted=True,
                reason=(
                    f"held-out recall@1 {fit.before['recall_at_1']:.4f} -> {fit.after['recall_at_1']:.4f}; "
                    f"{name} is now what {base} means"
                ),
                version=name,
                active=name,
                model_id=version.model_id,
                vectors=published["rows"],
                index=published["index"],
            )
        outcome["duration_s"] = round(time.perf_counter() - began, 2)
        return outcome

"""Fitting the adapter: a DxD matrix W, identity at first, so that normalize(photo W) lands on its product.

The loss is symmetric contrastive (CLIP's, with several positives): each training photo against the
catalog's products (a product scores by its best image, as search ranks them), and each product
in the batch against the batch's photos. Negatives are the other products: the whole catalog when
it is small, else the batch's products, the products operators rejected for these photos and a
random sample. Both sides go through W, as they will in the index. A penalty λ||W - I||^2 keeps W near
the identity, so what the pairs do not speak about (text search, other products) keeps working; the
temperature is learned. Text search goes through W as well: when the catalog's titles are given (as the
parent embeds them), a third term keeps the way each title ranks the catalog's images as the parent
had it (a KL divergence), which protects text search far better than the penalty alone can. AdamW, a
few hundred steps, CPU: seconds for a few thousand pairs.

Torch is imported here only, when training starts: serving never imports this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vision.adapter import project

TrainProgress = Callable[[int, int, float], None]  # (step, steps, loss)


@dataclass
class TrainConfig:
    epochs: int | None = None  # None: enough epochs for about `target_steps` steps
    target_steps: int = 300
    batch: int = 256
    lr: float = 2e-3
    penalty: float = 0.003  # λ in λ||W - I||^2 (tuned on the grocery and demo sets; see the report)
    temperature: float = 0.05  # initial; learned
    candidates: int = 8192  # catalog images scored per step; all of them when the catalog is smaller
    photos_as_views: bool = True  # the batch's other photos count as their products' customer views
    text_weight: float = 1.0  # weight of keeping the texts' ranking of the catalog (when texts are given)
    text_batch: int = 256
    text_temperature: float = 0.05
    seed: int = 0

    def steps_for(self, examples: int) -> tuple[int, int]:
        """(epochs, steps) for `examples` training photos."""
        per_epoch = max(1, math.ceil(examples / self.batch))
        epochs = self.epochs if self.epochs else max(1, math.ceil(self.target_steps / per_epoch))
        return epochs, epochs * per_epoch


@dataclass
class TrainingSet:
    """Unit vectors as the parent model embeds them.

    `photos` (N, D) with `photo_product` (N,) an index into the catalog's products; `catalog` (M, D)
    catalog images with `catalog_product` (M,); `rejected` lists, per photo, product indices an
    operator judged wrong for it (extra negatives)."""

    photos: np.ndarray
    photo_product: np.ndarray
    catalog: np.ndarray
    catalog_product: np.ndarray
    rejected: list[list[int]] = field(default_factory=list)
    photo_group: np.ndarray | None = None  # (N,) the same number for rows of the same photo
    texts: np.ndarray | None = None  # (T, D) the parent's embeddings of catalog titles (see below)


@dataclass
class TrainResult:
    matrix: np.ndarray
    steps: int
    epochs: int
    final_loss: float
    temperature: float
    distance_from_identity: float
    duration_s: float

    def to_json(self) -> dict:
        return {
            "steps": self.steps,
            "epochs": self.epochs,
            "final_loss": round(self.final_loss, 4),
            "temperature": round(self.temperature, 4),
            "distance_from_identity": round(self.distance_from_identity, 4),
            "duration_s": round(self.duration_s, 2),
        }


def train_adapter(
    data: TrainingSet, config: TrainConfig | None = None, progress: TrainProgress | None = None
) -> TrainResult:
    """Fit W on `data`; deterministic for a given seed."""
    import torch

    config = config or TrainConfig()
    threads = torch.get_num_threads()
    # Small steps run far faster on one thread: several threads spin against each other (and against
    # whatever else the machine runs) on matrices this size; measured 16x on 2 busy cores.
    per_step = (config.batch + min(len(data.catalog), config.candidates)) * data.photos.shape[1] ** 2
    torch.set_num_threads(1 if per_step < 2e8 else threads)
    try:
        return _train(data, config, progress, torch)
    finally:
        torch.set_num_threads(threads)


def _train(data: TrainingSet, config: TrainConfig, progress: TrainProgress | None, torch) -> TrainResult:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    dim = data.photos.shape[1]
    photos = torch.from_numpy(np.ascontiguousarray(data.photos, np.float32))
    catalog = torch.from_numpy(np.ascontiguousarray(data.catalog, np.float32))
    owners = np.asarray(data.catalog_product, np.int64)
    texts = (
        torch.from_numpy(np.ascontiguousarray(data.texts, np.float32))
        if data.texts is not None and len(data.texts)
        else None
    )
    groups = np.asarray(data.photo_group if data.photo_group is not None else np.arange(len(photos)))
    by_product: dict[int, np.ndarray] = {}
    order = np.argsort(owners, kind="stable")
    for product, start, stop in _runs(owners[order]):
        by_product[product] = order[start:stop]
    identity = torch.eye(dim)
    weight = torch.nn.Parameter(identity.clone())
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))
    optimizer = torch.optim.AdamW([weight, log_scale], lr=config.lr, weight_decay=0.0)
    epochs, steps = config.steps_for(len(photos))
    small = len(catalog) <= config.candidates
    step, loss_value = 0, float("nan")
    for _epoch in range(epochs):
        permutation = rng.permutation(len(photos))
        for start in range(0, len(photos), config.batch):
            chosen = permutation[start : start + config.batch]
            columns = np.arange(len(catalog)) if small else _candidates(chosen, data, by_product, config, rng)
            product_ids, column_owner = np.unique(owners[columns], return_inverse=True)
            column_of = {int(p): n for n, p in enumerate(product_ids)}
            target = torch.tensor([column_of[int(p)] for p in data.photo_product[chosen]], dtype=torch.int64)
            query = _adapt(photos[chosen], weight)
            keys = _adapt(catalog[torch.from_numpy(columns)], weight)
            scale = log_scale.clamp(max=math.log(100.0)).exp()
            logits = scale * query @ keys.T
            per_product = _best_per_product(logits, column_owner, len(product_ids))
            photo_loss = torch.nn.functional.cross_entropy(per_product, target)
            if config.photos_as_views:
                # Search also matches customer views, photos like these: the other photos of the batch
                # count as views of their products (never a photo as its own view), in a second term,
                # so the catalog images alone must still be found (a store may hold no views).
                same_photo = torch.from_numpy(groups[chosen][:, None] == groups[chosen][None, :])
                between = (scale * query @ query.T).masked_fill(same_photo, -1e4)
                owner = np.concatenate([column_owner, target.numpy()])
                with_views = _best_per_product(torch.cat([logits, between], dim=1), owner, len(product_ids))
                photo_loss = 0.5 * (photo_loss + torch.nn.functional.cross_entropy(with_views, target))
            present = torch.unique(target)
            positive = target[:, None] == present[None, :]
            columns_of_present = per_product[:, present]
            product_loss = (
                torch.logsumexp(columns_of_present, dim=0)
                - torch.logsumexp(columns_of_present.masked_fill(~positive, -1e4), dim=0)
            ).mean()
            loss = 0.5 * (photo_loss + product_loss) + config.penalty * ((weight - identity) ** 2).sum()
            if texts is not None and config.text_weight > 0:
                picked = torch.from_numpy(
                    rng.choice(len(texts), size=min(config.text_batch, len(texts)), replace=False)
                )
                loss = loss + config.text_weight * _text_drift(
                    texts[picked], catalog[torch.from_numpy(columns)], keys, weight, config
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            if progress:
                progress(step, steps, loss_value)
    matrix = weight.detach().numpy().astype(np.float32)
    return TrainResult(
        matrix=matrix,
        steps=step,
        epochs=epochs,
        final_loss=loss_value,
        temperature=float(1.0 / log_scale.detach().clamp(max=math.log(100.0)).exp()),
        distance_from_identity=float(np.linalg.norm(matrix - np.eye(dim, dtype=np.float32))),
        duration_s=time.perf_counter() - began,
    )


def _best_per_product(logits, owner: np.ndarray, products: int):  # type: ignore[no-untyped-def]
    """(B, products) logits: each product's best image, as search rolls images up to products."""
    import torch

    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=products)
    if counts.max() == 1:
        return logits[:, torch.from_numpy(order)]
    width = int(counts.max())
    slots = np.full((products, width), logits.shape[1], np.int64)  # padding: a column of -1e4 below
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for product in range(products):
        slots[product, : counts[product]] = order[starts[product] : starts[product] + counts[product]]
    padded = torch.cat([logits, torch.full((logits.shape[0], 1), -1e4)], dim=1)
    return padded[:, torch.from_numpy(slots.reshape(-1))].view(logits.shape[0], products, width).amax(dim=2)


def _text_drift(texts, raw_keys, keys, weight, config: TrainConfig):  # type: ignore[no-untyped-def]
    """How far the adapter moves text search: KL between how the parent ranks these catalog images for
    each text and how the adapted model does (both towers go through W, so text search changes too)."""
    import torch

    with torch.no_grad():
        before = torch.log_softmax(texts @ raw_keys.T / config.text_temperature, dim=1)
    after = torch.log_softmax(_adapt(texts, weight) @ keys.T / config.text_temperature, dim=1)
    return torch.nn.functional.kl_div(after, before, log_target=True, reduction="batchmean")


def _adapt(vectors, weight):  # type: ignore[no-untyped-def]
    import torch

    return torch.nn.functional.normalize(vectors @ weight, dim=1)


def _runs(sorted_values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, start, stop) of each run of equal values in a sorted array."""
    if not len(sorted_values):
        return []
    edges = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(sorted_values)]])
    return [(int(sorted_values[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _candidates(
    chosen: np.ndarray, data: TrainingSet, by_product: dict[int, np.ndarray], config: TrainConfig, rng
) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Catalog rows scored in a step over a large catalog: the batch's products, the products rejected
    for its photos, and random others up to `config.candidates`."""
    wanted = set(int(p) for p in data.photo_product[chosen])
    for n in chosen:
        if n < len(data.rejected):
            wanted.update(data.rejected[n])
    must = np.concatenate([by_product[p] for p in wanted if p in by_product]) if wanted else np.empty(0, np.int64)
    room = max(0, config.candidates - len(must))
    others = rng.choice(len(data.catalog), size=min(room, len(data.catalog)), replace=False)
    return np.unique(np.concatenate([must, others]))


# --- measuring -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSpace:
    """What the held-out photos are searched against: vectors with the product each belongs to."""

    vectors: np.ndarray
    product: np.ndarray  # product index per vector


def product_ranks(queries: np.ndarray, truth: np.ndarray, space: SearchSpace) -> np.ndarray:
    """1-based rank of each query's right product (products scored by their best vector), exact search.

    A product tied with the right one counts as ranked above it, so a tie never looks like a win.
    Queries go a few at a time, so the score matrix stays near 200 MB whatever the catalog's size."""
    ranks = np.zeros(len(queries), np.int64)
    if not len(queries):
        return ranks
    chunk = max(1, min(256, 50_000_000 // max(len(space.vectors), 1)))
    products = max(int(space.product.max()) + 1 if len(space.product) else 0, int(truth.max()) + 1)
    order = np.argsort(space.product, kind="stable")
    runs = _runs(space.product[order])
    values = np.asarray([v for v, _, _ in runs], np.int64)
    starts = np.asarray([a for _, a, _ in runs], np.int64)
    ordered = space.vectors[order]
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ ordered.T
        best = np.full((len(scores), products), -np.inf, np.float32)
        if len(values):
            best[:, values] = np.maximum.reduceat(scores, starts, axis=1)
        right = best[np.arange(len(best)), truth[start : start + chunk]]
        ranks[start : start + chunk] = (best >= right[:, None]).sum(axis=1)
    return ranks


def recall_figures(ranks: np.ndarray) -> dict:
    if not len(ranks):
        return {"photos": 0, "recall_at_1": 0.0, "recall_at_5": 0.0, "recall_at_10": 0.0, "mrr": 0.0}
    return {
        "photos": len(ranks),
        "recall_at_1": round(float((ranks <= 1).mean()), 4),
        "recall_at_5": round(float((ranks <= 5).mean()), 4),
        "recall_at_10": round(float((ranks <= 10).mean()), 4),
        "mrr": round(float((1.0 / ranks).mean()), 4),
    }


def compare_on_holdout(
    queries: np.ndarray, truth: np.ndarray, space: SearchSpace, matrix: np.ndarray
) -> tuple[dict, dict]:
    """(before, after) recall of held-out photos: the parent's vectors, then everything re-projected by W."""
    before = recall_figures(product_ranks(queries, truth, space))
    adapted = SearchSpace(project(space.vectors, matrix), space.product)
    after = recall_figures(product_ranks(project(queries, matrix), truth, adapted))
    return before, after

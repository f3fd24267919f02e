"""What learning reads: the parent model's catalog vectors and the pair photos embedded by it.

Catalog vectors come from the parent's vector store (the source of truth), not from re-embedding:
a product's catalog images are its ids without the customer-view flag (`catalog.ids`). Pair photos
are embedded exactly as a search embeds an upload with that crop (`vision.micro_batch.load_query_pixels`),
and kept in a small cache per model (`learning/photos-<model>.npz` in VITRINE_HOME), so learning
again, or evaluating again, embeds only the photos it has not seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalog.ids import VIEW_FLAG
from catalog.workspace import Workspace, safe_name
from index.vector_store import VectorStore
from vision.embedder import Embedder
from vision.errors import ImageRejected
from vision.micro_batch import load_query_pixels
from workflow.pairs import PairRecord

BATCH = 32
_PRODUCT_MASK = (1 << 58) - 1  # catalog.ids: the product bits of an image id

Progress = Callable[[int], None]


@dataclass(frozen=True)
class StoreVectors:
    """Every live vector of a store: ids, unit vectors, the product of each, and which are customer views."""

    ids: np.ndarray
    vectors: np.ndarray
    products: np.ndarray
    views: np.ndarray

    @classmethod
    def read(cls, store: VectorStore) -> StoreVectors:
        ids, vectors = [], []
        for batch in store.scan():
            ids.append(batch.ids)
            vectors.append(batch.vectors)
        id_array = np.concatenate(ids) if ids else np.empty(0, np.int64)
        matrix = np.concatenate(vectors) if vectors else np.empty((0, store.dim), np.float32)
        return cls(id_array, matrix, (id_array >> 4) & _PRODUCT_MASK, (id_array & VIEW_FLAG) != 0)


def photo_key(pair: PairRecord) -> str:
    crop = ",".join(f"{v:.6f}" for v in pair.crop) if pair.crop else ""
    return f"{pair.photo_sha256}|{crop}"


def cache_path(workspace: Workspace, model_id: str) -> Path:
    return workspace.home / "learning" / f"photos-{safe_name(model_id)}.npz"


def embed_pair_photos(
    pairs: Sequence[PairRecord],
    embedder: Embedder,
    workspace: Workspace,
    progress: Progress | None = None,
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """{photo key: unit vector} for every pair's photo (with its crop), and the photos that failed."""
    path = cache_path(workspace, embedder.manifest.model_id)
    cached: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as saved:
            cached = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
    wanted: dict[str, PairRecord] = {}
    for pair in pairs:
        wanted.setdefault(photo_key(pair), pair)
    out = {key: cached[key] for key in wanted if key in cached}
    todo = [(key, pair) for key, pair in wanted.items() if key not in cached]
    failed: list[dict] = []
    done = len(out)
    if progress:
        progress(done)
    for start in range(0, len(todo), BATCH):
        keys, pixels = [], []
        for key, pair in todo[start : start + BATCH]:
            try:
                pixels.append(load_query_pixels(pair.photo(), embedder, pair.crop))
                keys.append(key)
            except (ImageRejected, ValueError, OSError) as exc:
                failed.append({"pair": pair.id, "photo": pair.photo_sha256, "reason": str(exc)})
        if pixels:
            for key, vector in zip(keys, embedder.embed_pixels(np.stack(pixels)), strict=True):
                out[key] = vector
        done += len(todo[start : start + BATCH])
        if progress:
            progress(done)
    merged = {**cached, **out}
    if todo and merged:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(temporary, keys=np.asarray(list(merged), dtype=str), vectors=np.stack(list(merged.values())))
        os.replace(temporary, path)
    return out, failed

"""`vitrine bench publish`: what the end of an ingest costs when a vendor changes a little of a large
catalog — extending the saved inverted file against rebuilding it from the store, on the same store
state in the same run, with recall@10 of both against exact search.

The catalog is the index benchmark's fixed generator (unit vectors around random centres); the
update is written to the store in ingest-sized batches (128 rows), as `vitrine ingest` writes it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.index_search import CENTRES, CHUNK, attributes_for, generate
from catalog.catalog_index import DEFAULT_MEMORY_BUDGET, publish_index
from catalog.workspace import Workspace
from catalog_ingest.ingest import BATCH_ROWS
from index.build import save_from_store
from index.persistence import load_index
from index.planner import plan_index
from index.vector_index import VectorIndex
from index.vector_store import VectorStore

MODEL_ID = "bench-publish"


def run_publish_bench(
    n: int, dim: int = 512, update_share: float = 0.01, queries: int = 200, log: Callable[[str], None] = print
) -> dict:
    centres = np.random.default_rng(0).standard_normal((CENTRES, dim), dtype=np.float32)
    added = max(1, int(n * update_share))
    removed = added // 4
    with tempfile.TemporaryDirectory(prefix="vitrine-publish-bench-") as scratch:
        workspace = Workspace(Path(scratch) / "home")
        store = VectorStore(workspace.vectors_dir(MODEL_ID), MODEL_ID, dim)
        for number, chunk in enumerate(generate(n, dim, 1, centres)):
            start = number * CHUNK
            store.append(np.arange(start, start + len(chunk)), chunk, attributes_for(start, len(chunk)))
            log(f"store: {start + len(chunk):,} / {n:,}")
        began = time.perf_counter()
        first = publish_index(workspace, MODEL_ID, dim)
        first_s = time.perf_counter() - began
        log(f"first publish ({first['mode']}, {first['index_type']}): {first_s:.1f} s")

        new = np.concatenate(list(generate(added, dim, 3, centres)))
        for start in range(0, added, BATCH_ROWS):  # as an ingest writes: one store file per batch
            ids = np.arange(n + start, n + min(start + BATCH_ROWS, added))
            store.append(ids, new[start : start + len(ids)], attributes_for(int(ids[0]), len(ids)))
        store.delete(np.random.default_rng(4).choice(n, removed, replace=False))
        log(f"update: {added:,} vectors added, {removed:,} removed")

        began = time.perf_counter()
        updated = publish_index(workspace, MODEL_ID, dim)
        updated_s = time.perf_counter() - began
        log(f"publish after the update ({updated['mode']}): {updated_s:.1f} s")
        began = time.perf_counter()  # the same store state, rebuilt as before this change
        plan = plan_index(store.count(), dim, DEFAULT_MEMORY_BUDGET)
        save_from_store(store, plan, Path(scratch) / "rebuilt", extra={"store_segment": store.last_segment})
        rebuilt_s = time.perf_counter() - began
        log(f"rebuild of the same store: {rebuilt_s:.1f} s")

        probes = np.concatenate([new[: queries // 2], *generate(queries - queries // 2, dim, 2, centres)])
        truth = _exact_top_k(store, probes, 10)
        recall = {}
        for name, directory in (("updated", workspace.index_dir(MODEL_ID)), ("rebuilt", Path(scratch) / "rebuilt")):
            index = load_index(directory)
            try:
                recall[name] = _recall(index, probes, truth)
            finally:
                index.close()
    return {
        "n": n,
        "dim": dim,
        "index_type": first["index_type"],
        "engine": plan.spec.to_json(),
        "first_publish_s": round(first_s, 2),
        "update_added": added,
        "update_removed": removed,
        "update_mode": updated["mode"],
        "update_compaction": updated["compaction"].get("mode"),
        "updated_publish_s": round(updated_s, 2),
        "rebuilt_publish_s": round(rebuilt_s, 2),
        "rebuilt_vs_updated": round(rebuilt_s / updated_s, 2),
        "recall_at_10_updated": round(recall["updated"], 4),
        "recall_at_10_rebuilt": round(recall["rebuilt"], 4),
        "count": updated["count"],
    }


def _exact_top_k(store: VectorStore, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top k over the store's live vectors, scanned a batch at a time."""
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_ids = np.full((len(queries), k), -1, np.int64)
    for batch in store.scan():
        scores = queries @ batch.vectors.T
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(batch.ids, scores.shape)], axis=1)
        top = np.argpartition(-all_scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, top, axis=1)
        best_ids = np.take_along_axis(all_ids, top, axis=1)
    return best_ids


def _recall(index: VectorIndex, queries: np.ndarray, truth: np.ndarray) -> float:
    found = index.search(queries, truth.shape[1]).ids
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))

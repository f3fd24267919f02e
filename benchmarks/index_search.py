"""`vitrine bench index`: build, recall and latency on a fixed synthetic generator, in one run.

Generator (fixed, so figures compare across runs and machines): 10,000 centres drawn from
N(0, I); each vector is a random centre + 0.6·N(0, I), L2-normalised; 1,000 queries drawn the same
way with another seed. Vectors are generated in chunks and written to a scratch file, never all
in memory; the index's own memory is measured before the scratch file is read back.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.engines import EngineSpec, default_nlist
from index.filters import ItemAttributes, SearchFilter
from index.planner import IndexPlan, plan_index
from index.vector_index import VectorIndex

CENTRES = 10_000
NOISE = 0.6
CHUNK = 100_000
CATEGORIES = 100  # each category holds 1% of the vectors: the filtered figure's selectivity


@dataclass
class IndexBenchSettings:
    n: int
    dim: int = 512
    queries: int = 1000
    k: int = 10
    kind: str = "auto"
    memory_budget: int = 4 * 10**9
    nprobe: int = 16
    latency_queries: int = 1000


def generate(n: int, dim: int, seed: int, centres: np.ndarray) -> Iterator[np.ndarray]:
    """Unit vectors around random centres, in chunks (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        chunk = centres[rng.integers(0, len(centres), size)] + NOISE * rng.standard_normal((size, dim), np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        yield chunk.astype(np.float32, copy=False)


def attributes_for(start: int, size: int) -> list[ItemAttributes]:
    return [
        ItemAttributes(
            price=float((i * 37) % 1000), category=f"c{i % CATEGORIES}", vendor=f"v{i % 7}", in_stock=i % 5 != 0
        )
        for i in range(start, start + size)
    ]


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_index_bench(settings: IndexBenchSettings, log: Callable[[str], None] = print) -> dict:
    n, dim = settings.n, settings.dim
    centres = np.random.default_rng(0).standard_normal((CENTRES, dim), dtype=np.float32)
    queries = np.concatenate(list(generate(settings.queries, dim, 2, centres)))
    plan = _plan(settings)
    log(f"plan: {plan.reason}")
    with tempfile.TemporaryDirectory(prefix="vitrine-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        data_path = scratch / "data.f32"
        spill = None if plan.vectors_in_memory else scratch / "index-vectors.f32"
        index = VectorIndex(dim, f"bench-{dim}d", plan.spec, vectors_path=spill)
        rss_before = resident_mb()
        build_seconds = 0.0
        if not plan.spec.exact:  # train on the first 64 vectors per list (the generator's order is random)
            sample = np.concatenate(list(generate(min(n, 64 * plan.spec.nlist), dim, 1, centres)))
            began = time.perf_counter()
            index.train(sample)
            build_seconds += time.perf_counter() - began
            del sample
        with data_path.open("wb") as data_file:  # plain writes: no mapped pages inflate the RSS figure
            for number, chunk in enumerate(generate(n, dim, 1, centres)):
                start = number * CHUNK
                data_file.write(chunk.tobytes())
                began = time.perf_counter()
                index.add(np.arange(start, start + len(chunk)), chunk, attributes_for(start, len(chunk)))
                build_seconds += time.perf_counter() - began
                log(f"built {start + len(chunk):,} / {n:,}")
        memory_mb = resident_mb() - rss_before
        data = np.memmap(data_path, np.float32, "r", shape=(n, dim))

        log("exact ground truth ...")
        truth = _exact_top_k(data, queries, settings.k)
        log("timing searches ...")
        result = _search_figures(index, queries, truth, settings)
        flat = _flat_single_query_ms(data, queries[:20], settings.k)
        log("timing filtered searches (1% and 10% selectivity) ...")
        filtered = _filtered_figures(index, data, queries[:200], settings.k, 1, "filtered")
        filtered.update(_filtered_figures(index, data, queries[:200], settings.k, 10, "filtered_10pct"))
        log("deleting and upserting 1% ...")
        updates = _update_figures(index, data, queries[:200], settings.k)
        del data
    return {
        "n": n,
        "dim": dim,
        "index_type": plan.spec.kind,
        "engine": plan.spec.to_json(),
        "plan_reason": plan.reason,
        "memory_budget_mb": round(settings.memory_budget / 1e6),
        "build_s": round(build_seconds, 2),
        "memory_mb": round(memory_mb, 1),
        **result,
        "flat_p50_ms": round(flat, 3),
        "speedup_vs_flat_p50": round(flat / result["p50_ms"], 1),
        **filtered,
        **updates,
    }


def _plan(settings: IndexBenchSettings) -> IndexPlan:
    if settings.kind == "auto":
        plan = plan_index(settings.n, settings.dim, settings.memory_budget)
        return IndexPlan(
            EngineSpec(**{**plan.spec.to_json(), "nprobe": settings.nprobe}),
            plan.vectors_in_memory,
            plan.estimated_bytes,
            plan.reason,
        )
    spec = EngineSpec(kind=settings.kind, nlist=default_nlist(settings.n), nprobe=settings.nprobe)  # type: ignore[arg-type]
    return IndexPlan(spec, True, 0, f"forced by --kind {settings.kind}")


def _exact_top_k(data: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_ids = np.full((len(queries), k), -1, np.int64)
    for start in range(0, len(data), CHUNK):
        block = np.asarray(data[start : start + CHUNK])
        scores = queries @ block.T
        if mask is not None:
            scores[~mask[:, start : start + len(block)]] = -np.inf
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate(
            [best_ids, np.broadcast_to(np.arange(start, start + len(block)), scores[:, k:].shape)], axis=1
        )
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores, best_ids = np.take_along_axis(scores, top, axis=1), np.take_along_axis(ids, top, axis=1)
    return best_ids


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean(
            [len(set(f[f >= 0]) & set(t[t >= 0])) / max((t >= 0).sum(), 1) for f, t in zip(found, truth, strict=True)]
        )
    )


def _latencies(run: Callable[[int], object], count: int) -> np.ndarray:
    times = np.empty(count)
    for i in range(count):
        began = time.perf_counter()
        run(i)
        times[i] = (time.perf_counter() - began) * 1000
    return times


def _search_figures(index: VectorIndex, queries: np.ndarray, truth: np.ndarray, settings: IndexBenchSettings) -> dict:
    found = index.search(queries, settings.k).ids
    singles = _latencies(lambda i: index.search(queries[i % len(queries)], settings.k), settings.latency_queries)
    began = time.perf_counter()
    index.search(queries, settings.k)
    batch_seconds = time.perf_counter() - began
    return {
        "recall_at_10": round(_recall(found, truth), 4),
        "p50_ms": round(float(np.percentile(singles, 50)), 3),
        "p99_ms": round(float(np.percentile(singles, 99)), 3),
        "batch_qps": round(len(queries) / batch_seconds, 1),
    }


def _flat_single_query_ms(data: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Exact single-query search with FAISS over the same vectors, read in place (no second copy)."""
    import faiss

    def search(i: int) -> None:
        for start in range(0, len(data), 1_000_000):
            faiss.knn(queries[i : i + 1], np.asarray(data[start : start + 1_000_000]), k, faiss.METRIC_INNER_PRODUCT)

    search(0)  # warm: the first pass pulls the vectors into the page cache
    return float(np.percentile(_latencies(search, len(queries)), 50))


def _filtered_figures(
    index: VectorIndex, data: np.ndarray, queries: np.ndarray, k: int, per_query: int, prefix: str
) -> dict:
    """Each query allows `per_query` of the 100 categories (1% each), drawn independently of the vectors."""
    first = (np.arange(len(queries)) * 7) % (CATEGORIES - per_query + 1)
    filters = [SearchFilter.of(categories=[f"c{c}" for c in range(f, f + per_query)]) for f in first]
    found = np.stack([index.search(queries[i], k, filters[i]).ids[0] for i in range(len(queries))])
    times = _latencies(lambda i: index.search(queries[i], k, filters[i]), len(queries))
    item_category = np.arange(len(data)) % CATEGORIES
    mask = (item_category[None, :] >= first[:, None]) & (item_category[None, :] < first[:, None] + per_query)
    truth = _exact_top_k(data, queries, k, mask)
    return {
        f"{prefix}_selectivity": per_query / CATEGORIES,
        f"{prefix}_p50_ms": round(float(np.percentile(times, 50)), 3),
        f"{prefix}_p99_ms": round(float(np.percentile(times, 99)), 3),
        f"{prefix}_recall_at_10": round(_recall(found, truth), 4),
        f"{prefix}_full_pages": round(float((found >= 0).all(axis=1).mean()), 4),
    }


def _update_figures(index: VectorIndex, data: np.ndarray, queries: np.ndarray, k: int) -> dict:
    n = len(data)
    rng = np.random.default_rng(5)
    deleted = rng.choice(n, size=max(1, n // 100), replace=False)
    upserted = rng.choice(np.setdiff1d(np.arange(n), deleted), size=max(1, n // 100), replace=False)
    began = time.perf_counter()
    index.delete(deleted)
    moved = np.asarray(data[np.sort(upserted)])
    index.upsert(np.sort(upserted), moved, attributes_for(0, len(upserted)))
    update_seconds = time.perf_counter() - began
    found = index.search(queries, k).ids
    times = _latencies(lambda i: index.search(queries[i], k), len(queries))
    alive = np.ones(n, bool)
    alive[deleted] = False
    truth = _exact_top_k(data, queries, k, np.broadcast_to(alive, (len(queries), n)))
    return {
        "updates": {"deleted": len(deleted), "upserted": len(upserted), "seconds": round(update_seconds, 2)},
        "after_updates_recall_at_10": round(_recall(found, truth), 4),
        "after_updates_p50_ms": round(float(np.percentile(times, 50)), 3),
        "deleted_ids_returned": int(np.isin(found, deleted).sum()),
    }


def parse_count(text: str) -> int:
    """'1M', '5m', '200k', '1_000_000' → int."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    factor = {"k": 10**3, "m": 10**6}.get(text[-1:], 1)
    return math.floor(float(text[:-1] if factor > 1 else text) * factor)

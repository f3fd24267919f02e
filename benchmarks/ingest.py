"""`vitrine bench ingest`: rows per second against the embedder's own rate, and peak memory.

A generated catalog of realistic ~1200x1200 JPEG photos, each file distinct (a base photo plus a
unique JPEG comment, so nothing is deduplicated away), ingested by a child process exactly as
`vitrine ingest` runs; the child's peak resident memory is read from the kernel's accounting.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.embed import benchmark_model
from benchmarks.synthetic_photos import synthetic_photo
from vision.model_store import ModelStore
from vision.onnx_embedder import OnnxEmbedder

BASE_PHOTOS = 32

# The ingest runs as the grandchild of a small launcher. A process's peak-memory accounting starts
# from the memory of the process it was forked from (Linux carries it over exec), so a child forked
# straight from this one (an embedder loaded, perhaps a model just exported) would report this
# process's size whenever that is the larger; forked from the launcher it reports its own.
_LAUNCHER = (
    "import json, resource, subprocess, sys\n"
    "status = subprocess.call(sys.argv[2:])\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    json.dump({'maxrss_kb': usage.ru_maxrss, 'cpu_s': usage.ru_utime + usage.ru_stime}, out)\n"
    "sys.exit(status)\n"
)


def unique_jpeg(base: bytes, tag: int) -> bytes:
    """Insert a comment segment after the start-of-image marker: new bytes, same pixels."""
    comment = f"vitrine-bench-{tag}".encode()
    return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]


def write_catalog(folder: Path, rows: int, size: int = 1200) -> Path:
    bases = [synthetic_photo(seed, (size, size), quality=88) for seed in range(BASE_PHOTOS)]
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    path = folder / "catalog.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "title", "price", "currency", "image", "category", "in_stock"])
        for i in range(rows):
            name = f"photos/{i:06d}.jpg"
            (folder / name).write_bytes(unique_jpeg(bases[i % BASE_PHOTOS], i))
            writer.writerow(
                [f"B{i:06d}", f"Bench product {i}", f"{5 + i % 200}.00", "EUR", name, f"cat{i % 12}", "yes"]
            )
    return path


def _embed_only_rate(embedder: OnnxEmbedder, batch: np.ndarray, rounds: int = 8) -> tuple[float, float]:
    """The embedder alone, batch 32, as the ingest child uses it (same session options): (images per
    second, CPU seconds per image over all threads)."""
    began, cpu_began = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        embedder.embed_pixels(batch)
    images = rounds * len(batch)
    return images / (time.perf_counter() - began), (time.process_time() - cpu_began) / images


@dataclass(frozen=True)
class ChildIngest:
    """What one `vitrine ingest --json` child did: its summary and what the kernel counted for it."""

    summary: dict
    peak_rss_mb: float
    wall_s: float
    cpu_s: float  # user + system, every thread


def ingest_in_child(catalog: Path, vendor: str, model: str | Path, home: Path, scratch: Path) -> ChildIngest:
    """Run `vitrine ingest --json` in a child process with `VITRINE_HOME=home`."""
    env = {**os.environ, "VITRINE_HOME": str(home)}
    command = [sys.executable, "-m", "cli", "ingest", str(catalog), "--vendor", vendor]
    command += ["--model", str(model), "--json"]
    out_path, err_path, peak_path = scratch / "stdout.json", scratch / "stderr.txt", scratch / "usage.json"
    began = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as errors:
        status = subprocess.call(
            [sys.executable, "-c", _LAUNCHER, str(peak_path), *command], env=env, stdout=out, stderr=errors
        )
    wall = time.perf_counter() - began
    if status != 0:
        raise RuntimeError(f"the ingest child failed: {err_path.read_text()[-2000:]}")
    usage = json.loads(peak_path.read_text())
    return ChildIngest(
        summary=json.loads(out_path.read_text().strip().splitlines()[-1]),
        peak_rss_mb=usage["maxrss_kb"] / 1024,
        wall_s=wall,
        cpu_s=usage["cpu_s"],
    )


def run_ingest_bench(
    rows: int, model: str, random_weights: bool, store: ModelStore, log: Callable[[str], None] = print
) -> dict:
    directory, manifest = benchmark_model(model, random_weights, store, log)
    embedder = OnnxEmbedder(directory, manifest)
    batch = np.random.default_rng(0).standard_normal((32, 3, *manifest.preprocess.image_size), dtype=np.float32)
    embedder.embed_pixels(batch)
    before, cpu_before = _embed_only_rate(embedder, batch)
    log(f"embedding only: {before:.1f} images/s")
    with tempfile.TemporaryDirectory(prefix="vitrine-ingest-bench-") as scratch:
        folder = Path(scratch)
        log(f"writing a catalog of {rows:,} distinct ~1200x1200 JPEG photos ...")
        catalog = write_catalog(folder / "catalog", rows)
        photo_mb = sum(p.stat().st_size for p in (folder / "catalog" / "photos").iterdir()) / rows / 1e6
        log("ingesting in a child process ...")
        child = ingest_in_child(catalog, "bench", directory, folder / "home", folder)
    after, cpu_after = _embed_only_rate(embedder, batch)
    embed_only = (before + after) / 2  # the machine's state drifts: bracket the ingest run
    summary = child.summary
    return {
        "rows": rows,
        "model": manifest.name,
        "architecture": manifest.architecture,
        "photo_size": "1200x1200",
        "photo_mean_mb": round(photo_mb, 3),
        "accepted": summary["accepted"],
        "rejected": summary["rejected"],
        "ingest_s": summary["duration_s"],
        "process_wall_s": round(child.wall_s, 2),
        # Where the time goes: CPU per image of the whole ingest against inference alone, and how
        # many cores the ingest kept busy (2 = both, all the time).
        "ingest_cpu_ms_per_image": round(1000 * child.cpu_s / max(summary["images_embedded"], 1), 1),
        # to the microsecond: a small model needs ~0.1 ms per image, which 0.1 ms steps would round to 0.0
        "embed_only_cpu_ms_per_image": round(1000 * (cpu_before + cpu_after) / 2, 3),
        "ingest_cores_busy": round(child.cpu_s / child.wall_s, 2),
        "rows_per_s": summary["rows_per_s"],
        "images_per_s": summary["images_per_s"],
        "embed_only_images_per_s": round(embed_only, 2),
        "embed_only_before_after": [round(before, 2), round(after, 2)],
        "rows_per_s_vs_embed_only": round(summary["rows_per_s"] / embed_only, 3),
        "peak_rss_mb": round(child.peak_rss_mb, 1),
    }

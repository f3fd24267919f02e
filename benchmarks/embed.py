"""`vitrine bench embed`: throughput and latency of every backend, as ratios within one run.

Random weights cost exactly what trained ones cost, so the benchmark needs no download.
Everything is measured in this process on the same inputs, back to back, because on a
shared 2-core machine only ratios measured together are worth comparing.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.synthetic_photos import synthetic_photo
from vision.decode import DecodeLimits, decode_image
from vision.manifest import ModelManifest
from vision.model_store import ModelStore
from vision.onnx_embedder import OnnxEmbedder, default_threads
from vision.pipeline import embed_sources, load_pixels
from vision.preprocess import PreprocessConfig


@dataclass
class BenchSettings:
    model: str
    random_weights: bool = True
    batch: int = 32
    rounds: int = 3
    photos: int = 256
    latency_runs: int = 30
    threads: int = 0
    include_torch: bool = True
    baseline: str | None = None  # another architecture (random weights) timed in the same run, e.g. ViT-B-32


def run_embed_bench(settings: BenchSettings, store: ModelStore, log: Callable[[str], None] = print) -> dict:
    threads = settings.threads or default_threads()
    directory, manifest = benchmark_model(settings.model, settings.random_weights, store, log)
    config = manifest.preprocess
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((settings.batch, 3, *config.image_size), dtype=np.float32)
    result: dict[str, object] = {
        "model": manifest.name,
        "architecture": manifest.architecture,
        "weights": "random" if settings.random_weights else manifest.source_label,
        "threads": threads,
        "batch": settings.batch,
        "image_size": list(config.image_size),
    }

    fp32 = OnnxEmbedder(directory, manifest, quantized=False, threads=threads)
    int8 = OnnxEmbedder(directory, manifest, quantized=True, threads=threads)
    log("timing ONNX fp32 ...")
    result["onnx_images_per_s"] = _images_per_s(lambda: fp32.embed_pixels(pixels), settings)
    log("timing ONNX int8 ...")
    result["onnx_int8_images_per_s"] = _images_per_s(lambda: int8.embed_pixels(pixels), settings)
    if settings.include_torch:
        log("timing torch (open_clip eager) ...")
        result["torch_images_per_s"] = _torch_images_per_s(manifest, directory, pixels, settings, threads)

    log(f"drawing {settings.photos} synthetic 12-megapixel JPEGs ...")
    photos = [synthetic_photo(seed) for seed in range(min(settings.photos, 8))]
    sources = [photos[i % len(photos)] for i in range(settings.photos)]
    result["photo_megapixels"] = 12.0
    result["photo_mean_mb"] = round(statistics.mean(len(p) for p in photos) / 1e6, 2)
    result.update(_decode_timings(photos, config))

    log("timing the decode-included pipeline (fp32, then int8) ...")
    result["pipeline_images_per_s"] = _pipeline_images_per_s(fp32, sources, settings.batch)
    result["pipeline_int8_images_per_s"] = _pipeline_images_per_s(int8, sources, settings.batch)
    exact = fp32.embed_pixels(np.stack([load_pixels(p, config, fast=False) for p in photos]))
    fast = fp32.embed_pixels(np.stack([load_pixels(p, config, fast=True) for p in photos]))
    result["draft_vs_exact_cosine_min"] = round(float((exact * fast).sum(axis=1).min()), 5)

    log("timing single-photo latency ...")
    latencies = []
    for i in range(settings.latency_runs):
        start = time.perf_counter()
        fp32.embed_pixels(load_pixels(photos[i % len(photos)], config)[None])
        latencies.append((time.perf_counter() - start) * 1000)
    result["single_image_latency_ms_p50"] = round(float(np.percentile(latencies, 50)), 2)
    result["single_image_latency_ms_p99"] = round(float(np.percentile(latencies, 99)), 2)

    onnx_rate = float(result["onnx_images_per_s"])
    result["ratios"] = {
        "onnx_int8_vs_onnx": round(float(result["onnx_int8_images_per_s"]) / onnx_rate, 2),
        "pipeline_vs_onnx": round(float(result["pipeline_images_per_s"]) / onnx_rate, 2),
        "pipeline_int8_vs_onnx": round(float(result["pipeline_int8_images_per_s"]) / onnx_rate, 2),
        "draft_decode_speedup": result["draft_decode_speedup"],
    }
    if "torch_images_per_s" in result:
        result["ratios"]["onnx_vs_torch"] = round(onnx_rate / float(result["torch_images_per_s"]), 2)
    if settings.baseline:
        result["baseline"] = _baseline_rates(settings, store, threads, sources, log)
        for key in ("onnx_images_per_s", "onnx_int8_images_per_s", "pipeline_images_per_s"):
            ratio = float(result[key]) / float(result["baseline"][key])
            result["ratios"][f"{key.removesuffix('_images_per_s')}_vs_baseline"] = round(ratio, 2)
    result["cpu_count"] = os.cpu_count()
    return result


def _baseline_rates(
    settings: BenchSettings, store: ModelStore, threads: int, sources: list[bytes], log: Callable[[str], None]
) -> dict[str, object]:
    """The same embedding and pipeline rates for the baseline architecture (random weights: same compute),
    measured in this run, so the model's figures come with a ratio rather than a number from another day."""
    assert settings.baseline is not None
    directory, manifest = benchmark_model(settings.baseline, True, store, log)
    pixels = np.random.default_rng(0).standard_normal(
        (settings.batch, 3, *manifest.preprocess.image_size), dtype=np.float32
    )
    fp32 = OnnxEmbedder(directory, manifest, quantized=False, threads=threads)
    int8 = OnnxEmbedder(directory, manifest, quantized=True, threads=threads)
    log(f"timing the baseline {manifest.architecture} (ONNX fp32, int8, pipeline) ...")
    return {
        "model": settings.baseline,
        "architecture": manifest.architecture,
        "image_size": list(manifest.preprocess.image_size),
        "onnx_images_per_s": _images_per_s(lambda: fp32.embed_pixels(pixels), settings),
        "onnx_int8_images_per_s": _images_per_s(lambda: int8.embed_pixels(pixels), settings),
        "pipeline_images_per_s": _pipeline_images_per_s(fp32, sources, settings.batch),
    }


def benchmark_model(
    model: str, random_weights: bool, store: ModelStore, log: Callable[[str], None]
) -> tuple[Path, ModelManifest]:
    """The model under test; with random weights, an export of the bare architecture, cached."""
    if not random_weights:
        return store.resolve(model)
    spec = store.catalogue().get(model)
    architecture = spec.architecture if spec else model
    name = f"bench-{architecture.replace('/', '_').replace(':', '_')}-random"
    directory = store.installed_dir(name)
    if not (directory / "manifest.json").is_file():
        log(f"exporting {architecture} with random weights to {directory} (once) ...")
        from vision.export import export_model

        export_model(
            ModelManifest(
                name=name,
                architecture=architecture,
                source={"kind": "random", "seed": 0},
                embed_dim=0,
                preprocess=PreprocessConfig(),
                description="benchmark export, random weights",
            ),
            directory,
        )
    return store.resolve(str(directory))


def _pipeline_images_per_s(embedder: OnnxEmbedder, sources: list[bytes], batch: int) -> float:
    list(embed_sources(embedder, sources[:batch]))  # warm the pool and the session
    start = time.perf_counter()
    outcomes = list(embed_sources(embedder, sources, batch_size=batch))
    elapsed = time.perf_counter() - start
    if any(o.error for o in outcomes):
        raise RuntimeError("a synthetic photo was refused; the benchmark is broken")
    return round(len(sources) / elapsed, 2)


def _images_per_s(run: Callable[[], object], settings: BenchSettings) -> float:
    run()  # warm-up: session initialisation and memory arenas
    start = time.perf_counter()
    for _ in range(settings.rounds):
        run()
    return round(settings.rounds * settings.batch / (time.perf_counter() - start), 2)


def _torch_images_per_s(
    manifest: ModelManifest, directory: Path, pixels: np.ndarray, settings: BenchSettings, threads: int
) -> float:
    import torch

    from vision.torch_embedder import TorchEmbedder

    torch.set_num_threads(threads)
    embedder = TorchEmbedder.from_manifest(manifest, directory)
    return _images_per_s(lambda: embedder.embed_pixels(pixels), settings)


def _decode_timings(photos: list[bytes], config: PreprocessConfig, repeats: int = 1) -> dict[str, float]:
    limits = DecodeLimits(max_bytes=200_000_000, max_pixels=500_000_000)

    def median_ms(draft: int | None) -> float:
        times = []
        for _ in range(repeats):
            for photo in photos:
                start = time.perf_counter()
                decode_image(photo, limits, draft_size=draft)
                times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    full, draft = median_ms(None), median_ms(config.draft_size)
    return {
        "full_decode_ms": round(full, 2),
        "draft_decode_ms": round(draft, 2),
        "draft_decode_speedup": round(full / draft, 2),
    }


def run_decode_bench(files: list[Path], config: PreprocessConfig, repeats: int = 5) -> dict:
    """Full vs draft decode time of each given JPEG (real photos), medians over `repeats`."""
    rows = []
    for path in files:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as header:
            size = header.size
        rows.append(
            {
                "file": path.name,
                "megapixels": round(size[0] * size[1] / 1e6, 1),
                "mb": round(len(data) / 1e6, 2),
                **_decode_timings([data], config, repeats),
            }
        )
    return {"draft_size": config.draft_size, "files": rows}

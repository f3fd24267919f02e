"""One training run of the default model, from the data on this machine to the committed checkpoint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from training.lit import (
    CHECKPOINT_FILE,
    LitReport,
    LitSettings,
    build_model,
    save_trained_part,
    train_lit,
    write_report,
)
from training.sources import Item, demo_items, flipkart_items, grocery_items
from training.trunk_cache import extract
from vision.model_store import CATALOGUE_DIR, ModelStore

MODEL_NAME = "vitrine-lite2"
SHARED_DATA = CATALOGUE_DIR.parent.parent / "shared" / "data"
DEMO_CHECKPOINT = CATALOGUE_DIR / "demo" / "demo.safetensors"

Log = Callable[[str], None]
Progress = Callable[[str, int, int], Callable[[int], None]]  # (task, total, ...) -> advance(n)


def training_items(settings: LitSettings, flipkart: Path | None, grocery: Path | None, log: Log) -> list[Item]:
    """The demo products plus whichever real sources are present (each missing one is said, not fatal)."""
    from demo.train import TRAIN_CATALOG_SEED

    items = demo_items(settings.demo_products, TRAIN_CATALOG_SEED)
    real_sources = (("Flipkart sample", flipkart, flipkart_items), ("grocery catalog", grocery, grocery_items))
    for name, folder, read in real_sources:
        if folder is not None and folder.is_dir():
            found = read(folder)
            log(f"{name}: {len(found)} catalog images from {folder}")
            items += found
        else:
            log(f"{name}: not found ({folder}); training without it")
    return items


def train_lite2(
    out_dir: Path,
    settings: LitSettings,
    flipkart: Path | None,
    grocery: Path | None,
    cache: Path | None,
    log: Log = print,
    progress: Progress = lambda task, total: lambda n: None,
) -> LitReport:
    """Extract the frozen-stage features (or reuse `cache`), train, write `out_dir/vitrine-lite2.safetensors`
    and `out_dir/training.json`; ends within `settings.time_budget_s` seconds of starting."""
    began = time.perf_counter()
    deadline = began + settings.time_budget_s
    torch.set_num_threads(settings.threads)
    manifest = ModelStore().catalogue()[MODEL_NAME]
    model = build_model(manifest, DEMO_CHECKPOINT)
    items = training_items(settings, flipkart, grocery, log)
    report = LitReport(settings=asdict(settings))
    report.items = {source: sum(item.source == source for item in items) for source in ("demo", "flipkart", "grocery")}
    key = "-".join(f"{k}{v}" for k, v in report.items.items()) + f"-v{settings.views}-s{settings.seed}"
    cached = cache / f"lite2-frozen-{key}.npz" if cache is not None else None
    report.features_reused = cached is not None and cached.is_file()
    started = time.perf_counter()
    features = extract(
        model.visual.trunk,
        items,
        settings.views,
        manifest.preprocess,
        settings.seed,
        cache=cached,
        log=log,
        progress=progress("frozen stages", len(items)),
    )
    report.extract_s = round(time.perf_counter() - started, 1)
    log(f"frozen-stage features of {len(items)} items x {1 + settings.views} images in {report.extract_s:.0f} s")
    train_lit(model, items, features, settings, deadline, report, log, progress("training", settings.steps))
    model.eval()
    save_trained_part(model, out_dir / CHECKPOINT_FILE)
    report.total_s = round(time.perf_counter() - began, 1)
    write_report(report, out_dir / "training.json")
    log(f"done: {report.steps_done} steps in {report.train_s:.0f} s; total {report.total_s:.0f} s")
    return report

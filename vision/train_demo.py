"""Train the `demo` model: a small open_clip-architecture CLIP learnt from generated products.

No pretrained weights can be downloaded offline, so the demo model learns its whole space from
the demo generator: a customer photo must land near the clean catalog shot of the same product
(photo → product search), and a title or a few words near the images of that kind of product
(text → product search). Each step takes a batch of distinct products and sums three symmetric
contrastive (CLIP) losses: photo↔shot, shot↔caption and photo↔caption.

The products and customer photos come from seeds reserved for training (`TRAIN_CATALOG_SEED`,
`TRAIN_PHOTO_SEEDS`); the standard evaluation uses other catalog and photo seeds, checked here.
Rendering happens once, up front, into an 8-bit pool at the model's input size (through the
same resize/crop the serving path uses), split over processes; training then runs on torch's
CPU threads until the step count or the time budget is reached, whichever comes first.

Imports torch: training only, never the serving path.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from vision.demo_products import EVAL_CATALOG_SEED, EVAL_PHOTO_SEED, ProductSpec, product_spec
from vision.open_clip_loader import preprocess_config_of, register_project_configs
from vision.photo_simulator import customer_photo
from vision.preprocess import PreprocessConfig, resize_and_crop
from vision.product_render import render_layer, render_shot

ARCHITECTURE = "vitrine-demo"
CHECKPOINT_FILE = "demo.safetensors"
TRAIN_CATALOG_SEED = 1001
TRAIN_PHOTO_SEEDS = tuple(range(5000, 5016))


@dataclass
class TrainSettings:
    products: int = 3000
    photos_per_product: int = 4
    batch: int = 96
    types_per_batch: int = 3
    steps: int = 900
    time_budget_s: float = 660.0  # training loop only; rendering comes before it
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 40
    threads: int = 2
    workers: int = 2
    seed: int = 0
    image_loss_weight: float = 1.0
    text_loss_weight: float = 0.5
    init: str | None = None  # a checkpoint to continue from, instead of random weights


@dataclass
class TrainReport:
    settings: dict
    architecture: str
    parameters: int
    render_s: float = 0.0
    pool_reused: bool = False
    train_s: float = 0.0
    total_s: float = 0.0
    steps_done: int = 0
    images_seen: int = 0
    final_loss: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)
    load_average: list[float] = field(default_factory=list)
    machine: str = ""
    torch_version: str = ""
    open_clip_version: str = ""


def check_seeds() -> None:
    """The evaluation's catalog and photo seeds are not training seeds (a guard against leaks by edits)."""
    if EVAL_CATALOG_SEED == TRAIN_CATALOG_SEED or EVAL_PHOTO_SEED in TRAIN_PHOTO_SEEDS:
        raise ValueError("training seeds overlap the evaluation seeds")


# --- data -----------------------------------------------------------------------------------------------------


def _to_jpeg_and_back(image: Image.Image) -> Image.Image:
    """Files on disk are JPEGs (quality 92): train on what serving decodes."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92)
    out.seek(0)
    return Image.open(out).convert("RGB")


def _render_product(job: tuple[int, int, PreprocessConfig]) -> tuple[np.ndarray, np.ndarray]:
    """One training product: its clean shot and K customer photos, resized to the model input, uint8 HWC."""
    index, photos, config = job
    spec = product_spec(TRAIN_CATALOG_SEED, index)
    layer = render_layer(spec)
    shot = np.asarray(resize_and_crop(_to_jpeg_and_back(render_shot(spec)), config))
    sims = [
        np.asarray(resize_and_crop(_to_jpeg_and_back(customer_photo(spec, seed, layer=layer)), config))
        for seed in TRAIN_PHOTO_SEEDS[:photos]
    ]
    return shot, np.stack(sims)


def render_pool(
    settings: TrainSettings, config: PreprocessConfig, log: Callable[[str], None], cache: Path | None = None
) -> tuple[np.ndarray, np.ndarray, list[ProductSpec], bool]:
    """(shots NxHxWx3, photos NxKxHxWx3, specs, reused) for the training products, rendered over processes.

    With `cache`, the pool is kept there (keyed by everything that shapes it) and reused by the next run,
    so trying training settings does not pay for rendering again.
    """
    specs = [product_spec(TRAIN_CATALOG_SEED, i) for i in range(settings.products)]
    key = f"s{TRAIN_CATALOG_SEED}-n{settings.products}-k{settings.photos_per_product}-{config.image_size[0]}px"
    cached = cache / f"demo-train-pool-{key}.npz" if cache else None
    if cached is not None and cached.is_file():
        with np.load(cached) as data:
            log(f"reusing the rendered pool {cached}")
            return data["shots"], data["photos"], specs, True
    jobs = [(i, settings.photos_per_product, config) for i in range(settings.products)]
    shots, photos = [], []
    with ProcessPoolExecutor(max_workers=settings.workers) as pool:
        for n, (shot, sims) in enumerate(pool.map(_render_product, jobs, chunksize=16), 1):
            shots.append(shot)
            photos.append(sims)
            if n % 500 == 0:
                log(f"rendered {n}/{settings.products} products")
    shot_array, photo_array = np.stack(shots), np.stack(photos)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".tmp.npz")
        np.savez(partial, shots=shot_array, photos=photo_array)
        os.replace(partial, cached)
    return shot_array, photo_array, specs, False


_FILLERS = ("", "", "", "for sale", "a photo of a", "buy", "new", "cheap")


def caption(spec: ProductSpec, rng: np.random.Generator) -> str:
    """A title or a shopper-style phrase about the product: the full title, or some of its attributes + noun."""
    if rng.random() < 0.35:
        return spec.title.lower()
    kind = spec.product_type
    noun = kind.category if rng.random() < 0.4 else (spec.shape if spec.shape in ("armchair", "stool") else kind.name)
    words = []
    if rng.random() < 0.5:
        words.append(spec.colour)
    if spec.pattern != "plain" and rng.random() < 0.4:
        words.append(spec.pattern)
    if spec.material != spec.colour and rng.random() < 0.4:
        words.append(spec.material)
    if rng.random() < 0.35:
        words.append(spec.shape)
    words.append(noun)
    if rng.random() < 0.25:
        words += ["with", spec.accent, kind.detail]
    filler = _FILLERS[int(rng.integers(0, len(_FILLERS)))]
    if filler == "a photo of a":
        words = [filler, *words]
    elif filler:
        words.append(filler)
    return " ".join(words)


# --- training ---------------------------------------------------------------------------------------------------


def _batch_products(by_type: list[np.ndarray], settings: TrainSettings, rng: np.random.Generator) -> np.ndarray:
    """Distinct products from a few types only: within a type, products differ by colour, material, pattern and
    detail alone, so each batch is full of the hard negatives that photo search must tell apart, while the
    other types keep text search's kind-of-product contrast."""
    kinds = rng.choice(len(by_type), size=min(settings.types_per_batch, len(by_type)), replace=False)
    pool = np.concatenate([by_type[k] for k in kinds])
    return rng.choice(pool, size=min(settings.batch, len(pool)), replace=False)


def _clip_loss(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * a @ b.T
    labels = torch.arange(len(a))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _to_tensor(pixels: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std


def train_demo(
    out_dir: Path,
    settings: TrainSettings | None = None,
    log: Callable[[str], None] = print,
    cache: Path | None = None,
) -> TrainReport:
    """Render the pool, train, and write `out_dir/demo.safetensors` (fp16) and `out_dir/training.json`."""
    settings = settings or TrainSettings()
    check_seeds()
    began = time.perf_counter()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    register_project_configs()
    model = open_clip.create_model(ARCHITECTURE)
    if settings.init:
        # Continue from an earlier checkpoint (fp16 on disk, copied into the fp32 parameters).
        model.load_state_dict(load_file(settings.init), strict=True)
        log(f"starting from {settings.init}")
    tokenizer = open_clip.get_tokenizer(ARCHITECTURE)
    config = preprocess_config_of(model)
    report = TrainReport(
        settings=asdict(settings),
        architecture=ARCHITECTURE,
        parameters=sum(p.numel() for p in model.parameters()),
        machine=f"{platform.machine()}, {os.cpu_count()} cores visible, {settings.threads} torch threads",
        torch_version=torch.__version__,
        open_clip_version=open_clip.__version__,
    )
    log(f"{ARCHITECTURE}: {report.parameters:,} parameters; rendering {settings.products} products")
    shots, photos, specs, report.pool_reused = render_pool(settings, config, log, cache)
    report.render_s = time.perf_counter() - began
    log(f"pool ready in {report.render_s:.0f} s: {shots.shape[0]} shots, {photos.shape[0] * photos.shape[1]} photos")

    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(0.9, 0.98),
    )
    rng = np.random.default_rng(settings.seed)
    by_type = [np.flatnonzero([spec.type == kind for spec in specs]) for kind in sorted({s.type for s in specs})]
    model.train()
    train_began = time.perf_counter()
    step, running = 0, 0.0
    while True:
        progress = max(step / settings.steps, (time.perf_counter() - train_began) / settings.time_budget_s)
        if progress >= 1.0:
            break
        lr = settings.lr * min(1.0, (step + 1) / settings.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimiser.param_groups:
            group["lr"] = lr
        chosen = _batch_products(by_type, settings, rng)
        which = rng.integers(0, photos.shape[1], size=len(chosen))
        batch_photos = photos[chosen, which]  # a copy: flipping it leaves the pool alone
        flip = rng.random(len(chosen)) < 0.5
        batch_photos[flip] = batch_photos[flip, :, ::-1]
        images = _to_tensor(np.concatenate([batch_photos, shots[chosen]]), mean, std)
        texts = tokenizer([caption(specs[i], rng) for i in chosen])
        image_features = F.normalize(model.encode_image(images), dim=-1)
        text_features = F.normalize(model.encode_text(texts), dim=-1)
        photo_f, shot_f = image_features[: len(chosen)], image_features[len(chosen) :]
        scale = model.logit_scale.exp().clamp(max=100)
        loss = settings.image_loss_weight * _clip_loss(photo_f, shot_f, scale) + settings.text_loss_weight * (
            _clip_loss(shot_f, text_features, scale) + _clip_loss(photo_f, text_features, scale)
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        value = loss.item()
        running = 0.9 * running + 0.1 * value if step > 1 else value
        if step % 25 == 0:
            report.losses.append((step, round(running, 4)))
            log(f"step {step} loss {running:.3f} lr {lr:.2e} elapsed {time.perf_counter() - began:.0f} s")
    report.train_s = time.perf_counter() - train_began
    report.steps_done = step
    report.images_seen = step * min(settings.batch, settings.products) * 2
    report.final_loss = round(running, 4)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, out_dir / CHECKPOINT_FILE)
    report.total_s = time.perf_counter() - began
    report.load_average = [round(v, 2) for v in os.getloadavg()]
    (out_dir / "training.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    log(f"done: {step} steps in {report.train_s:.0f} s; total {report.total_s:.0f} s")
    return report


def save_checkpoint(model: torch.nn.Module, path: Path) -> None:
    """Float weights stored as fp16 (half the bytes; they are loaded back into fp32 parameters)."""
    state = {
        name: (tensor.detach().half() if tensor.is_floating_point() else tensor.detach()).contiguous()
        for name, tensor in model.state_dict().items()
    }
    save_file(state, str(path), metadata={"architecture": ARCHITECTURE, "format": "open_clip state_dict, fp16"})

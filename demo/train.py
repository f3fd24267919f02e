"""Train the `demo` model: a small open_clip-architecture CLIP learnt from generated products.

No pretrained weights can be downloaded offline, so the demo model learns its whole space from
the demo generator: a customer photo must land near the clean catalog shot of the same product
(photo → product search), and a title or a few words near the images of that kind of product
(text → product search). Each step takes a batch of distinct products and sums contrastive (CLIP)
losses: photo↔shot (one right answer each), shot↔caption and photo↔caption (a caption such as
"red mug" has as many right answers as the batch has red mugs: every fitting product is a positive),
and a kind loss that sets every image against a name of each of the fourteen kinds. Each batch holds
a few kinds only (the hard negatives of photo search are products of the same kind); kinds whose
photos are still hard to match (a running mean of their photo↔shot loss) are drawn more often.

The products and customer photos come from seeds reserved for training (`TRAIN_CATALOG_SEED`,
`TRAIN_PHOTO_SEEDS`); the standard evaluation uses other catalog and photo seeds, checked here.
Rendering happens once, up front, into an 8-bit pool at the model's input size (through the
same resize/crop the serving path uses), split over processes; training then runs on torch's
CPU threads (bfloat16 autocast and channels-last convolutions where the CPU has native bf16, about
three times faster than fp32 on the image tower) until the step count or the time budget, which counts
the rendering too, is reached, whichever comes first; the learning rate follows whichever is nearer.

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

from demo.photo_simulator import customer_photo
from demo.products import (
    EVAL_CATALOG_SEED,
    EVAL_PHOTO_SEED,
    SHAPE_NOUNS,
    TYPES_BY_NAME,
    ProductSpec,
    ProductType,
    product_spec,
)
from demo.render import render_layer, render_shot
from vision.open_clip_loader import preprocess_config_of, register_project_configs
from vision.preprocess import PreprocessConfig, resize_and_crop

ARCHITECTURE = "vitrine-demo"
_SAVE_RESERVE_S = 10.0  # of the time budget, kept for writing the checkpoint and the report
CHECKPOINT_FILE = "demo.safetensors"
TRAIN_CATALOG_SEED = 1001
TRAIN_PHOTO_SEEDS = tuple(range(5000, 5016))


@dataclass
class TrainSettings:
    products: int = 3000
    photos_per_product: int = 8  # a photo costs a fifth of the product's drawing: cheap variety
    batch: int = 96
    types_per_batch: int = 3
    steps: int = 6000  # the time budget usually ends the run first
    time_budget_s: float = 1140.0  # the whole run, rendering included: the demo model trains in under 20 minutes
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 40
    threads: int = 2
    workers: int = 2
    seed: int = 0
    image_loss_weight: float = 1.0
    text_loss_weight: float = 0.5
    kind_loss_weight: float = 1.0
    augment: bool = True  # random zoom, shift, tilt and light on the customer photos at every step
    focus_hard_kinds: bool = True  # draw each kind in proportion to its running photo↔shot loss
    init: str | None = None  # a checkpoint to continue from, instead of random weights
    precision: str = "auto"  # "bf16" (autocast), "fp32", or "auto": bf16 where the CPU computes it natively


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
    precision: str = ""
    kind_difficulty: dict[str, float] = field(default_factory=dict)
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
    shot = np.asarray(resize_and_crop(_to_jpeg_and_back(render_shot(spec, layer=layer)), config))
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
    height, width = config.image_size
    # Filled in place as products arrive: a list stacked at the end would hold the pool twice.
    shot_array = np.empty((settings.products, height, width, 3), np.uint8)
    photo_array = np.empty((settings.products, settings.photos_per_product, height, width, 3), np.uint8)
    with ProcessPoolExecutor(max_workers=settings.workers) as pool:
        for n, (shot, sims) in enumerate(pool.map(_render_product, jobs, chunksize=16)):
            shot_array[n], photo_array[n] = shot, sims
            if (n + 1) % 500 == 0:
                log(f"rendered {n + 1}/{settings.products} products")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".tmp.npz")
        np.savez(partial, shots=shot_array, photos=photo_array)
        os.replace(partial, cached)
    return shot_array, photo_array, specs, False


_FILLERS = ("", "", "", "for sale", "a photo of a", "buy", "new", "cheap")


@dataclass(frozen=True)
class Caption:
    """A caption and what it claims: every product that satisfies the claims is a right answer for it.

    A phrase like "red mug" fits many products of a batch, not only the one it was written for; training
    it against the others as negatives would teach the text tower that "red mug" means one particular
    mug. The claims let the loss count every fitting product as a positive.
    """

    text: str
    title: str | None = None  # the full title: only products with the same title fit
    kind: str | None = None
    colour: str | None = None  # the main or the accent colour (a shopper names either)
    material: str | None = None
    pattern: str | None = None
    shape: str | None = None
    accent: str | None = None

    def fits(self, spec: ProductSpec) -> bool:
        if self.title is not None:
            return spec.title.lower() == self.title
        return (
            (self.kind is None or spec.type == self.kind)
            and (self.colour is None or self.colour in (spec.colour, spec.accent))
            and (self.material is None or spec.material == self.material)
            and (self.pattern is None or spec.pattern == self.pattern)
            and (self.shape is None or spec.shape == self.shape)
            and (self.accent is None or spec.accent == self.accent)
        )


def caption(spec: ProductSpec, rng: np.random.Generator) -> Caption:
    """A title or a shopper-style phrase about the product: the full title, or some of its attributes + noun."""
    if rng.random() < 0.3:
        title = spec.title.lower()
        return Caption(title, title=title)
    kind = spec.product_type
    nouns = [kind.category, kind.name] if kind.category != kind.name else [kind.name]
    if spec.shape in SHAPE_NOUNS:
        nouns.append(spec.shape)
    noun = nouns[int(rng.integers(0, len(nouns)))]
    claims: dict[str, str] = {"kind": spec.type}
    words = []
    if rng.random() < 0.45:
        colour = spec.accent if rng.random() < 0.3 else spec.colour
        words.append(colour)
        claims["colour"] = colour
    if spec.pattern != "plain" and rng.random() < 0.35:
        words.append(spec.pattern)
        claims["pattern"] = spec.pattern
    if spec.material != spec.colour and rng.random() < 0.35:
        words.append(spec.material)
        claims["material"] = spec.material
    if noun != spec.shape and rng.random() < 0.35:
        words.append(spec.shape)
        claims["shape"] = spec.shape
    elif noun == spec.shape:
        claims["shape"] = spec.shape
    words.append(noun)
    if rng.random() < 0.2:
        words += ["with", spec.accent, kind.detail]
        claims["accent"] = spec.accent
    filler = _FILLERS[int(rng.integers(0, len(_FILLERS)))]
    if filler == "a photo of a":
        words = [filler, *words]
    elif filler:
        words.append(filler)
    return Caption(" ".join(words), **claims)


# --- training ---------------------------------------------------------------------------------------------------


def kind_prompt(kind: ProductType, rng: np.random.Generator) -> str:
    """A bare way of naming a kind of product ("mugs", "a photo of a mug"), for the kind loss."""
    forms = (kind.category, kind.name, f"{kind.name} for sale", f"a photo of a {kind.name}", f"buy {kind.category}")
    return forms[int(rng.integers(0, len(forms)))]


def _batch_products(
    by_type: list[np.ndarray], settings: TrainSettings, rng: np.random.Generator, weights: np.ndarray
) -> np.ndarray:
    """Distinct products from a few types only: within a type, products differ by colour, material, pattern and
    detail alone, so each batch is full of the hard negatives that photo search must tell apart, while the
    other types keep text search's kind-of-product contrast. Types are drawn in proportion to `weights`."""
    size = min(settings.types_per_batch, len(by_type))
    kinds = rng.choice(len(by_type), size=size, replace=False, p=weights / weights.sum())
    pool = np.concatenate([by_type[k] for k in kinds])
    return rng.choice(pool, size=min(settings.batch, len(pool)), replace=False)


def _clip_loss(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return _clip_loss_each(a, b, scale).mean()


def _clip_loss_each(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The symmetric contrastive loss of each pair (a[i], b[i]) against the rest of the batch."""
    logits = scale * a @ b.T
    labels = torch.arange(len(a))
    by_a = F.cross_entropy(logits, labels, reduction="none")
    by_b = F.cross_entropy(logits.T, labels, reduction="none")
    return (by_a + by_b) / 2


def _multi_positive_loss(
    images: torch.Tensor, texts: torch.Tensor, fits: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric contrastive loss where caption i may fit several images: `fits[i, j]` is True when image j's
    product satisfies caption i (the diagonal always does); the target spreads evenly over the fitting ones."""
    logits = scale * texts @ images.T
    by_text = fits / fits.sum(dim=1, keepdim=True)
    by_image = fits.T / fits.T.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, by_text) + F.cross_entropy(logits.T, by_image)) / 2


def bf16_is_fast() -> bool:
    """bfloat16 autocast pays on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere it is slower."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)


def _augment(photos: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Another framing and light for each pooled photo (values in [0, 1]), drawn afresh at every step.

    The pool holds a few photos per product; seen dozens of times each, they would be memorised (the first
    demo model found its own training photos far better than new ones). A random zoom, shift and tilt
    (one affine resampling) and a mild change of exposure and white balance make each sighting new,
    at a cost of milliseconds per batch.
    """
    n = len(photos)

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=generator)

    zoom = uniform(0.85, 1.15)
    angle = uniform(-0.17, 0.17)  # radians, about 10 degrees
    shift = uniform(-0.08, 0.08, 2)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(photos.shape), align_corners=False)
    moved = F.grid_sample(photos, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    light = uniform(0.85, 1.15, 1, 1, 1) * uniform(0.93, 1.07, 3, 1, 1)
    return (moved * light).clamp_(0.0, 1.0)


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
    generator = torch.Generator().manual_seed(settings.seed)
    kinds = sorted({s.type for s in specs})
    by_type = [np.flatnonzero([spec.type == kind for spec in specs]) for kind in kinds]
    kind_of = np.asarray([kinds.index(spec.type) for spec in specs])
    # A running mean of each kind's photo↔shot loss: hard kinds (thin jewellery, say) are drawn more often.
    # It starts at an untrained model's loss, so a kind not drawn yet is not starved.
    ones = np.ones(len(kinds))
    kind_difficulty = ones * math.log(settings.batch)
    use_bf16 = settings.precision == "bf16" or (settings.precision == "auto" and bf16_is_fast())
    report.precision = "bf16 autocast" if use_bf16 else "fp32"
    model = model.to(memory_format=torch.channels_last)  # oneDNN's fast layout for the convolutions
    log(f"training in {report.precision}")
    model.train()
    train_began = time.perf_counter()
    train_budget = max(1.0, settings.time_budget_s - (train_began - began) - _SAVE_RESERVE_S)
    step, running = 0, 0.0
    while True:
        progress = max(step / settings.steps, (time.perf_counter() - train_began) / train_budget)
        if progress >= 1.0:
            break
        lr = settings.lr * min(1.0, (step + 1) / settings.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimiser.param_groups:
            group["lr"] = lr
        chosen = _batch_products(by_type, settings, rng, kind_difficulty if settings.focus_hard_kinds else ones)
        which = rng.integers(0, photos.shape[1], size=len(chosen))
        batch_photos = photos[chosen, which]  # a copy: flipping it leaves the pool alone
        flip = rng.random(len(chosen)) < 0.5
        batch_photos[flip] = batch_photos[flip, :, ::-1]
        photo_pixels = _to_tensor(batch_photos)
        if settings.augment:
            photo_pixels = _augment(photo_pixels, generator)
        images = (torch.cat([photo_pixels, _to_tensor(shots[chosen])]) - mean) / std
        images = images.contiguous(memory_format=torch.channels_last)
        captions = [caption(specs[i], rng) for i in chosen]
        fits = torch.tensor([[c.fits(specs[j]) for j in chosen] for c in captions], dtype=torch.float32)
        prompts = [kind_prompt(TYPES_BY_NAME[kind], rng) for kind in kinds]
        texts = tokenizer([c.text for c in captions] + prompts)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            image_out = model.encode_image(images)
            text_out = model.encode_text(texts)
        image_features = F.normalize(image_out.float(), dim=-1)
        text_features = F.normalize(text_out.float(), dim=-1)
        text_features, prompt_features = text_features[: len(chosen)], text_features[len(chosen) :]
        photo_f, shot_f = image_features[: len(chosen)], image_features[len(chosen) :]
        scale = model.logit_scale.exp().clamp(max=100)
        photo_losses = _clip_loss_each(photo_f, shot_f, scale)
        batch_kinds = kind_of[chosen]
        each = photo_losses.detach().numpy()
        for kind in np.unique(batch_kinds):
            kind_difficulty[kind] = 0.9 * kind_difficulty[kind] + 0.1 * float(each[batch_kinds == kind].mean())
        loss = settings.image_loss_weight * photo_losses.mean() + settings.text_loss_weight * (
            _multi_positive_loss(shot_f, text_features, fits, scale)
            + _multi_positive_loss(photo_f, text_features, fits, scale)
        )
        if settings.kind_loss_weight:
            # Every image against a name of every kind (not only the batch's few kinds): text search by kind.
            labels = torch.from_numpy(np.concatenate([kind_of[chosen], kind_of[chosen]]))
            loss = loss + settings.kind_loss_weight * F.cross_entropy(
                scale * image_features @ prompt_features.T, labels
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
    report.kind_difficulty = {kind: round(float(v), 3) for kind, v in zip(kinds, kind_difficulty, strict=True)}
    report.train_s = time.perf_counter() - train_began
    report.steps_done = step
    report.images_seen = step * min(settings.batch, settings.products) * 2
    report.final_loss = round(running, 4)
    model.eval()
    model = model.to(memory_format=torch.contiguous_format)
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

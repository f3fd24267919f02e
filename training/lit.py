"""Locked-image tuning (LiT, Zhai et al. 2022) of `vitrine-lite2`: the default model that works on real photos.

The image tower is EfficientNet-Lite2 with ImageNet weights from an installed package
(`vision.backbone`). Its first six stages stay locked; the last stage, the head convolution and a
projection to the 512-d shared space learn to match a simulated customer photo with its catalog
shot. The text tower (initialised from the demo model's, which already knows product words) learns
to meet the images. Batches mix generated demo products (the demo catalog must keep working) with
real catalog photos (Flipkart sample, grocery catalog shots) at `real_share`.

Loss per step = CLIP(view, shot) + text_weight x multi-positive CLIP(caption, shot): a caption like
"apple" fits every apple of the batch, not only the one it was drawn for (`training.sources.Item.keys`).
The caption loss reaches the text tower only (the shots are detached there), as in LiT.

Only what was trained is saved (`vitrine-lite2.safetensors`, fp16): the locked stages come from the
package at load time, checked by sha256.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from training.sources import Item
from training.trunk_cache import CachedFeatures, tail_parameters, trainable_tail
from vision.manifest import ModelManifest
from vision.open_clip_loader import place_backbone, register_project_configs

ARCHITECTURE = "vitrine-lite2"
CHECKPOINT_FILE = "vitrine-lite2.safetensors"
TRUNK = "visual.trunk"
TRAINED_TRUNK_PREFIXES = ("visual.trunk.blocks.6.", "visual.trunk.conv_head.", "visual.trunk.bn2.")

Log = Callable[[str], None]


@dataclass
class LitSettings:
    demo_products: int = 3000
    views: int = 1  # simulated customer photos per catalog image (more products beat more views: see the model card)
    steps: int = 400
    batch: int = 128
    real_share: float = 0.3  # share of each batch drawn from real photographs
    lr: float = 5e-4
    text_lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 20
    text_weight: float = 0.5
    time_budget_s: float = 1140.0  # the whole run, feature extraction included
    threads: int = 2
    seed: int = 0


@dataclass
class LitReport:
    settings: dict
    items: dict[str, int] = field(default_factory=dict)
    extract_s: float = 0.0
    features_reused: bool = False
    train_s: float = 0.0
    total_s: float = 0.0
    steps_done: int = 0
    trained_parameters: int = 0
    losses: list[tuple[int, float, float]] = field(default_factory=list)  # (step, image loss, text loss)
    load_average: list[float] = field(default_factory=list)
    torch_version: str = ""
    open_clip_version: str = ""


def build_model(manifest: ModelManifest, demo_checkpoint: Path | None) -> torch.nn.Module:
    """`vitrine-lite2` with the backbone in place, the text tower from the demo model, an orthogonal projection.

    An orthogonal 1280→512 projection keeps the pretrained features' cosines nearly as they were, so
    training starts from what ImageNet features already know, not from noise.
    """
    from vision.backbone import BackboneSpec

    register_project_configs()
    model = open_clip.create_model(ARCHITECTURE)
    place_backbone(model, BackboneSpec.from_json(manifest.source["backbone"]))
    torch.nn.init.orthogonal_(model.visual.head.proj.weight)
    if demo_checkpoint is not None and demo_checkpoint.is_file():
        demo = load_file(str(demo_checkpoint))
        text = {
            k: v.float()
            for k, v in demo.items()
            if k.startswith(("token_embedding.", "transformer.", "ln_final.", "positional_embedding"))
        }
        _, unexpected = model.load_state_dict(text, strict=False)
        assert not unexpected, unexpected
    return model


def _batch_indices(groups: dict[str, np.ndarray], settings: LitSettings, rng: np.random.Generator) -> np.ndarray:
    real = groups.get("real", np.empty(0, np.int64))
    demo = groups.get("demo", np.empty(0, np.int64))
    take_real = min(len(real), round(settings.batch * settings.real_share) if len(demo) else settings.batch)
    take_demo = min(len(demo), settings.batch - take_real)
    return np.concatenate(
        [rng.choice(real, take_real, replace=False), rng.choice(demo, take_demo, replace=False)]
    ).astype(np.int64)


def _multi_positive(texts: torch.Tensor, images: torch.Tensor, fits: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * texts @ images.T
    by_text = fits / fits.sum(dim=1, keepdim=True)
    by_image = fits.T / fits.T.sum(dim=1, keepdim=True).clamp(min=1)
    has_text = fits.T.sum(dim=1) > 0
    loss_text = F.cross_entropy(logits, by_text)
    loss_image = F.cross_entropy(logits.T[has_text], by_image[has_text]) if has_text.any() else loss_text * 0
    return (loss_text + loss_image) / 2


def train_lit(
    model: torch.nn.Module,
    items: list[Item],
    features: CachedFeatures,
    settings: LitSettings,
    deadline: float,
    report: LitReport,
    log: Log = print,
    progress: Callable[[int], None] = lambda _: None,
) -> None:
    """Train the image tail, the projection and the text tower on cached frozen-stage features, until
    `settings.steps` or `deadline` (a `time.perf_counter()` value), whichever comes first."""
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    trunk = model.visual.trunk
    for module in model.visual.modules():  # locked statistics: batches of cached features are not ImageNet
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    for p in model.parameters():
        p.requires_grad = False
    image_params = [*tail_parameters(trunk), *model.visual.head.parameters()]
    text_params = [p for n, p in model.named_parameters() if not n.startswith("visual.") and n != "logit_scale"]
    for p in [*image_params, *text_params, model.logit_scale]:
        p.requires_grad = True
    report.trained_parameters = sum(p.numel() for p in [*image_params, *text_params])
    optimiser = torch.optim.AdamW(
        [
            {"params": image_params, "lr": settings.lr, "weight_decay": settings.weight_decay},
            {"params": text_params, "lr": settings.text_lr, "weight_decay": settings.weight_decay},
            {"params": [model.logit_scale], "lr": settings.lr, "weight_decay": 0.0},
        ]
    )
    base_lrs = [group["lr"] for group in optimiser.param_groups]
    tokenizer = open_clip.get_tokenizer(ARCHITECTURE)
    groups = {
        "real": np.flatnonzero([item.real for item in items]),
        "demo": np.flatnonzero([not item.real for item in items]),
    }
    views = features.views.shape[1]
    began = time.perf_counter()
    for step in range(1, settings.steps + 1):
        if time.perf_counter() > deadline:
            log(f"time budget reached after {step - 1} steps")
            break
        factor = min(1.0, step / settings.warmup) * 0.5 * (1 + np.cos(np.pi * step / settings.steps))
        for group, base in zip(optimiser.param_groups, base_lrs, strict=True):
            group["lr"] = base * factor
        chosen = _batch_indices(groups, settings, rng)
        shots = torch.from_numpy(features.clean[chosen]).float()
        photos = torch.from_numpy(features.views[chosen, rng.integers(0, views, len(chosen))]).float()
        flip = torch.from_numpy(rng.random(len(chosen)) < 0.5)
        photos[flip] = photos[flip].flip(-1)
        drawn = [items[i].captions[int(rng.integers(len(items[i].captions)))] for i in chosen]
        fits = torch.tensor([[key in items[j].keys for j in chosen] for _, key in drawn], dtype=torch.float32)
        tokens = tokenizer([text for text, _ in drawn])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            both = model.visual.head(trainable_tail(trunk, torch.cat([photos, shots])))
            texts = model.encode_text(tokens)
        both = F.normalize(both.float(), dim=-1)
        texts = F.normalize(texts.float(), dim=-1)
        photo_vectors, shot_vectors = both[: len(chosen)], both[len(chosen) :]
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * photo_vectors @ shot_vectors.T
        labels = torch.arange(len(chosen))
        image_loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        # LiT: the text side learns to meet the images; the image side learns from photo <-> shot alone
        # (letting captions pull on it cost real-photo recall: grocery R@10 0.777 against 0.858 without).
        text_loss = _multi_positive(texts, shot_vectors.detach(), fits, scale)
        loss = image_loss + settings.text_weight * text_loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        report.steps_done = step
        progress(1)
        if step % 25 == 0 or step == settings.steps:
            report.losses.append((step, round(image_loss.item(), 4), round(text_loss.item(), 4)))
    report.train_s = time.perf_counter() - began


def save_trained_part(model: torch.nn.Module, path: Path) -> None:
    """What training changed, fp16: everything but the locked trunk stages (they come from the package)."""
    state = {
        name: (tensor.detach().half() if tensor.is_floating_point() else tensor.detach()).contiguous()
        for name, tensor in model.state_dict().items()
        if not name.startswith(TRUNK + ".") or name.startswith(TRAINED_TRUNK_PREFIXES)
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    save_file(state, str(partial), metadata={"architecture": ARCHITECTURE, "format": "open_clip state_dict, fp16"})
    os.chmod(partial, 0o644)
    os.replace(partial, path)


def write_report(report: LitReport, path: Path) -> None:
    report.load_average = [round(v, 2) for v in os.getloadavg()]
    report.torch_version = torch.__version__
    report.open_clip_version = open_clip.__version__
    path.write_text(json.dumps(asdict(report), indent=2) + "\n")

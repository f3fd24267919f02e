"""The frozen part of the image tower, run once per training image and kept.

Locked-image tuning keeps the pretrained backbone (nearly) fixed. Here the first six of
EfficientNet-Lite2's seven stages stay frozen and only the last stage, the 1x1 head convolution
and the projection learn. So each training image goes through the frozen stages once: their output
(208 channels at 9x9 for a 260 px input, 34 KB in fp16) is cached, and every training step runs
only the small trainable tail. Measured here: one step of 256 images through the tail costs
1.3 s in bfloat16, against 8 s when stage six also learns.

Each catalog item gets its clean shot and a few simulated customer photos (views): the demo's
photo simulator for rendered products, `training.shopper_views` for real photographs.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.shopper_views import shopper_view
from training.sources import Item
from vision.preprocess import PreprocessConfig, resize_and_crop

FROZEN_STAGES = 6  # trunk.blocks[:6]; blocks[6], conv_head and bn2 learn
BATCH = 32

Log = Callable[[str], None]


@dataclass(frozen=True)
class CachedFeatures:
    """`clean[i]` is item i's catalog image after the frozen stages, `views[i, k]` its k-th simulated photo."""

    clean: np.ndarray  # (N, C, H, W) float16
    views: np.ndarray  # (N, K, C, H, W) float16


def frozen_prefix(trunk: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """The stem and the frozen stages of a timm EfficientNet trunk."""
    hidden = trunk.bn1(trunk.conv_stem(pixels))
    for stage in trunk.blocks[:FROZEN_STAGES]:
        hidden = stage(hidden)
    return hidden


def trainable_tail(trunk: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The rest of the trunk after `frozen_prefix`, pooled: (N, 1280) for EfficientNet-Lite2."""
    for stage in trunk.blocks[FROZEN_STAGES:]:
        hidden = stage(hidden)
    hidden = trunk.bn2(trunk.conv_head(hidden))
    return trunk.global_pool(hidden)


def tail_parameters(trunk: torch.nn.Module) -> list[torch.nn.Parameter]:
    modules = [*trunk.blocks[FROZEN_STAGES:], trunk.conv_head, trunk.bn2]
    return [p for module in modules for p in module.parameters()]


_ITEMS: list[Item] = []  # what the forked image workers read (items hold closures, which do not pickle)


def _item_images(job: tuple[int, int, int, PreprocessConfig]) -> np.ndarray:
    """Item `index`'s clean image and its `views` simulated customer photos, resized and cropped for the model
    (uint8, (1 + views, H, W, 3)), reproducibly from `seed`."""
    from demo.photo_simulator import customer_photo
    from demo.products import product_spec
    from demo.render import render_layer, render_shot
    from demo.train import TRAIN_PHOTO_SEEDS, _to_jpeg_and_back

    index, views, seed, config = job
    item = _ITEMS[index]
    rng = np.random.default_rng([seed, index])
    if item.real:
        clean = item.load()
        other = _ITEMS[int(rng.integers(len(_ITEMS)))] if len(_ITEMS) > 1 else item
        clutter = other.load() if other.real else clean
        images = [clean, *(shopper_view(clean, clutter, rng) for _ in range(views))]
    else:
        assert item.demo is not None
        spec = product_spec(*item.demo)
        layer = render_layer(spec)  # drawn once, then shot and photographed (drawing is the costly part)
        # Catalog files are JPEGs; the photo seeds are the demo model's training seeds, never the evaluation's.
        images = [_to_jpeg_and_back(render_shot(spec, layer=layer))]
        seeds = [TRAIN_PHOTO_SEEDS[(seed + k) % len(TRAIN_PHOTO_SEEDS)] for k in range(views)]
        images += [customer_photo(spec, photo_seed, layer=layer) for photo_seed in seeds]
    return np.stack([np.asarray(resize_and_crop(image, config)) for image in images])


def extract(
    trunk: torch.nn.Module,
    items: list[Item],
    views: int,
    config: PreprocessConfig,
    seed: int,
    cache: Path | None = None,
    log: Log = lambda _: None,
    progress: Callable[[int], None] = lambda _: None,
) -> CachedFeatures:
    """Frozen-stage features of every item and its views; with `cache`, kept there and reused by the next run."""
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            log(f"reusing the frozen-stage features {cache}")
            return CachedFeatures(data["clean"], data["views"])
    trunk = trunk.eval().to(memory_format=torch.channels_last)
    normalise = torch.tensor(_normalisation(config), dtype=torch.float32)
    _ITEMS[:] = items
    clean: np.ndarray | None = None
    seen: np.ndarray | None = None
    jobs = [(i, views, seed, config) for i in range(len(items))]
    # One process draws and degrades images while this one runs the network: on two cores the two overlap.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: list[np.ndarray] = []
        first = 0
        for n, stack in enumerate(pool.map(_item_images, jobs, chunksize=8)):
            pending.append(stack)
            if len(pending) * (1 + views) >= BATCH or n == len(items) - 1:
                hidden = _prefix_of(trunk, np.concatenate(pending), normalise)
                hidden = hidden.reshape(len(pending), 1 + views, *hidden.shape[1:])
                if clean is None or seen is None:
                    clean = np.empty((len(items), *hidden.shape[2:]), np.float16)
                    seen = np.empty((len(items), views, *hidden.shape[2:]), np.float16)
                clean[first : first + len(pending)] = hidden[:, 0]
                seen[first : first + len(pending)] = hidden[:, 1:]
                first += len(pending)
                progress(len(pending))
                pending = []
    _ITEMS.clear()
    assert clean is not None and seen is not None and first == len(items)
    features = CachedFeatures(clean, seen)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".tmp.npz")
        np.savez(partial, clean=features.clean, views=features.views)
        os.replace(partial, cache)
    return features


def _normalisation(config: PreprocessConfig) -> np.ndarray:
    """(2, 3): the mean and std of the model's input normalisation, in 0-255 pixel units."""
    return np.asarray([config.mean, config.std], np.float32) * 255.0


def _prefix_of(trunk: torch.nn.Module, pixels: np.ndarray, normalise: torch.Tensor) -> np.ndarray:
    """uint8 (N, H, W, 3) model-size images → frozen-stage features, float16."""
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float()
    batch = (batch - normalise[0][None, :, None, None]) / normalise[1][None, :, None, None]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = frozen_prefix(trunk, batch.contiguous(memory_format=torch.channels_last))
    return hidden.float().numpy().astype(np.float16)

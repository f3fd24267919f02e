"""Preprocessing that reproduces open_clip's inference transform with PIL and NumPy alone.

The same PIL resampling calls torchvision makes for PIL input, the same rounding for the
crop, the same float32 arithmetic for normalisation: the result matches
`open_clip.create_model_and_transforms(...)[2]` to within float rounding, without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from PIL import Image

ResizeMode = Literal["shortest", "longest", "squash"]

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class PreprocessConfig:
    """What open_clip calls the preprocess config: target size (h, w), resize policy, normalisation."""

    image_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    resize_mode: ResizeMode = "shortest"
    interpolation: Literal["bicubic", "bilinear"] = "bicubic"
    fill_color: int = 0

    @property
    def draft_size(self) -> int:
        """Smallest short side to ask a JPEG decoder for when DCT scaling (the fast path).

        DCT scaling only divides by 1, 2, 4 or 8, so the decoded short side lands between
        this and twice this: about twice the model's input (1.67x for a 4000x3000 photo at
        224, which decodes at 1/8). Each step down skips resampling work that the final
        bicubic resize would otherwise do; the draft-vs-exact cosine test guards the quality.
        """
        return math.ceil(1.5 * max(self.image_size))


def preprocess(image: Image.Image, config: PreprocessConfig) -> np.ndarray:
    """One RGB image to a normalised float32 array of shape (3, H, W)."""
    pixels = np.asarray(_resize_and_crop(image, config))
    out = np.empty((3, *pixels.shape[:2]), dtype=np.float32)
    lut = _normalisation_table(tuple(config.mean), tuple(config.std))
    for channel in range(3):
        np.take(lut[channel], pixels[:, :, channel], out=out[channel])
    return out


@cache
def _normalisation_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 256): each 8-bit value of each channel, normalised. The same float32 arithmetic as
    `(x / 255 - mean) / std` per pixel (so the same bits), done once per value instead: a lookup
    per pixel is about 3x faster than the arithmetic and its temporary arrays."""
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    mean_column = np.asarray(mean, dtype=np.float32)[:, None]
    std_column = np.asarray(std, dtype=np.float32)[:, None]
    return np.ascontiguousarray((levels[None, :] - mean_column) / std_column, dtype=np.float32)


def preprocess_batch(images: Sequence[Image.Image], config: PreprocessConfig) -> np.ndarray:
    """Several images to one (N, 3, H, W) float32 batch."""
    batch = np.empty((len(images), 3, *config.image_size), dtype=np.float32)
    for i, image in enumerate(images):
        batch[i] = preprocess(image, config)
    return batch


def resize_and_crop(image: Image.Image, config: PreprocessConfig) -> Image.Image:
    """The geometric half of `preprocess` (resize and crop to the model's input, still 8-bit RGB): training
    stores its pool like this, so it sees exactly the pixels serving feeds the model, in a quarter of the memory."""
    return _resize_and_crop(image, config)


def _resize_and_crop(image: Image.Image, config: PreprocessConfig) -> Image.Image:
    target_h, target_w = config.image_size
    resample = _RESAMPLE[config.interpolation]
    if config.resize_mode == "squash":
        return _resize(image, (target_w, target_h), resample)
    if config.resize_mode == "longest":
        image = _resize(image, _keep_ratio_size(image, config.image_size, longest=True), resample)
        return _center_crop_or_pad(image, config.image_size, config.fill_color)
    if target_h == target_w:
        size = _shortest_edge_size(image.size, target_h)
    else:  # open_clip builds ResizeKeepRatio here without passing the interpolation: always bicubic
        size = _keep_ratio_size(image, config.image_size, longest=False)
        resample = Image.Resampling.BICUBIC
    return _center_crop_or_pad(_resize(image, size, resample), config.image_size, config.fill_color)


def _resize(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    return image if image.size == size else image.resize(size, resample)


def _shortest_edge_size(size: tuple[int, int], short_target: int) -> tuple[int, int]:
    """torchvision's Resize(int) output size: the short edge to target, the long edge truncated."""
    width, height = size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = short_target, int(short_target * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def _keep_ratio_size(image: Image.Image, target: tuple[int, int], longest: bool) -> tuple[int, int]:
    """open_clip's ResizeKeepRatio: scale by the longest or the shortest edge ratio, rounded."""
    height, width = image.height, image.width
    ratio_h, ratio_w = height / target[0], width / target[1]
    ratio = max(ratio_h, ratio_w) if longest else min(ratio_h, ratio_w)
    return (round(width / ratio), round(height / ratio))


def _center_crop_or_pad(image: Image.Image, target: tuple[int, int], fill: int) -> Image.Image:
    crop_h, crop_w = target
    if crop_w > image.width or crop_h > image.height:
        left = (crop_w - image.width) // 2 if crop_w > image.width else 0
        top = (crop_h - image.height) // 2 if crop_h > image.height else 0
        canvas = Image.new(image.mode, (max(crop_w, image.width), max(crop_h, image.height)), (fill,) * 3)
        canvas.paste(image, (left, top))
        image = canvas
    if image.size == (crop_w, crop_h):
        return image
    top = round((image.height - crop_h) / 2.0)
    left = round((image.width - crop_w) / 2.0)
    return image.crop((left, top, left + crop_w, top + crop_h))

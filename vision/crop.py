"""A query photo's crop rectangle, given as fractions of the image so it survives any rescaling.

The rectangle is chosen on a shown (often downscaled) copy of the photo; fractions mean the same
region whatever size the server decodes it at, draft-scaled JPEGs included.
"""

from __future__ import annotations

import math

from PIL import Image

Crop = tuple[float, float, float, float]  # x, y, width, height; each a fraction of the image


def validate_crop(crop: Crop) -> Crop:
    """The crop as floats, or `ValueError` saying what is wrong with it."""
    if len(crop) != 4:
        raise ValueError(f"a crop is four numbers x, y, width, height; got {len(crop)}")
    x, y, w, h = (float(v) for v in crop)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError("crop values must be finite numbers")
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError("crop x and y must be at least 0, and its width and height above 0")
    if x + w > 1 + 1e-6 or y + h > 1 + 1e-6:
        raise ValueError("the crop must lie inside the image: x + width and y + height are at most 1")
    return (x, y, w, h)


def crop_fraction(image: Image.Image, crop: Crop) -> Image.Image:
    """The region of `image` the fractions name, at least one pixel on each side."""
    x, y, w, h = validate_crop(crop)
    left = min(round(x * image.width), image.width - 1)
    top = min(round(y * image.height), image.height - 1)
    right = max(min(round((x + w) * image.width), image.width), left + 1)
    bottom = max(min(round((y + h) * image.height), image.height), top + 1)
    return image.crop((left, top, right, bottom))


def draft_size_for_crop(draft_size: int, crop: Crop | None) -> int:
    """The JPEG draft size that still leaves the cropped region `draft_size` pixels on its short side:
    a small crop of a draft-scaled photo would otherwise be embedded from a blurry few pixels."""
    if crop is None:
        return draft_size
    _, _, w, h = crop
    return math.ceil(draft_size / max(min(w, h), 1e-3))

"""Simulated customer photos of real catalog images: what a shopper's phone would make of the product.

A catalog shot is the product alone, centred, on white or a clean backdrop. The same product in a
customer's photo sits in a scene, off-centre, cropped, tilted, under coloured light, blurred and
compressed. Training the image projection to match such a view with its clean shot teaches it what
does not matter between a photo and a catalog entry, from catalog images alone (no customer photo
of any evaluated product is used).

The demo's renderer simulates photos of its own drawn products (`demo.photo_simulator`); this module
does the same for photographs, where no product mask exists: near-white backgrounds are replaced by
another catalog image, blurred, as clutter.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

WHITE_LEVEL = 236  # a pixel whose channels all exceed this counts as studio background


def shopper_view(image: Image.Image, clutter: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One simulated customer photo of `image`, with `clutter` as a possible background."""
    view = _on_background(image, clutter, rng) if rng.random() < 0.7 else image
    view = _reframe(view, rng)
    view = _relight(view, rng)
    if rng.random() < 0.4:
        view = view.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.8))))
    out = io.BytesIO()
    view.save(out, format="JPEG", quality=int(rng.integers(35, 90)))
    out.seek(0)
    return Image.open(out).convert("RGB")


def _on_background(image: Image.Image, clutter: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The product over a blurred other image where the shot is studio white (nothing to do on other shots)."""
    pixels = np.asarray(image)
    background = pixels.min(axis=2) > WHITE_LEVEL
    share = float(background.mean())
    if share < 0.15 or share > 0.95:
        return image
    scene = clutter.resize(image.size, Image.Resampling.BILINEAR).filter(
        ImageFilter.GaussianBlur(float(rng.uniform(1.0, 4.0)))
    )
    mask = Image.fromarray(np.where(background, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    return Image.composite(image, scene, mask)


def _reframe(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another crop (35-100% of the area, aspect 3:4 to 4:3), a tilt up to 20 degrees, a mirror half the time."""
    width, height = image.size
    area = width * height * float(rng.uniform(0.35, 1.0))
    ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    crop_w = int(min(width, round(np.sqrt(area * ratio))))
    crop_h = int(min(height, round(np.sqrt(area / ratio))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    view = image.crop((left, top, left + crop_w, top + crop_h))
    angle = float(rng.uniform(-20, 20))
    fill = tuple(int(c) for c in rng.integers(60, 200, 3))
    view = view.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=fill)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return view


def _relight(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Exposure, contrast and saturation, then a colour cast (warm bulbs, cool daylight)."""
    image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.65, 1.3)))
    image = ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.7, 1.25)))
    image = ImageEnhance.Color(image).enhance(float(rng.uniform(0.6, 1.3)))
    gain = rng.uniform(0.88, 1.12, 3).astype(np.float32)
    pixels = np.asarray(image, np.float32) * gain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")

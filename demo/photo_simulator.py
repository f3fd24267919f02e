"""Customer photos of demo products: the same product as a shopper would photograph it.

A catalog shot is centred, evenly lit and on white. A customer's photo is not: the product sits
at another scale, angle and place, in front of a cluttered background, under coloured light, a
little out of focus, noisy, JPEG-compressed, and sometimes partly covered by a finger or another
object. Each effect is drawn from the seed, so a query set is reproducible and a training set
can use other seeds than the evaluation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from demo.products import ProductSpec
from demo.render import render_layer


@dataclass(frozen=True)
class PhotoConditions:
    """How hard the simulated photos are. The defaults are the evaluation's conditions."""

    size: tuple[int, int] = (320, 240)  # landscape; portrait is drawn half the time
    scale: tuple[float, float] = (0.45, 0.85)  # product size relative to the short side
    max_rotation: float = 30.0
    occlusion_probability: float = 0.35
    colour_cast: float = 0.12
    max_blur: float = 1.6
    max_noise: float = 10.0
    jpeg_quality: tuple[int, int] = (35, 85)


DEFAULT_CONDITIONS = PhotoConditions()
_SKIN = ((224, 172, 140), (198, 134, 100), (141, 85, 54), (241, 194, 167))


def customer_photo(
    spec: ProductSpec,
    seed: int,
    conditions: PhotoConditions = DEFAULT_CONDITIONS,
    layer: Image.Image | None = None,
) -> Image.Image:
    """A simulated shopper's photo of `spec` (RGB, already JPEG-degraded). `layer` reuses a rendered product."""
    rng = np.random.default_rng([seed, spec.seed, spec.index, 0xC0FFEE])
    width, height = conditions.size if rng.random() < 0.5 else conditions.size[::-1]
    layer = layer if layer is not None else render_layer(spec)
    photo = _clutter(rng, width, height)
    short = min(width, height)
    # The product's layer is a square with margins; scale it to cover `scale` of the short side.
    target = int(short * float(rng.uniform(*conditions.scale)) / 0.8)
    angle = float(rng.uniform(-conditions.max_rotation, conditions.max_rotation))
    product = layer.resize((target, target), Image.Resampling.BILINEAR).rotate(
        angle, resample=Image.Resampling.BILINEAR, expand=True
    )
    if rng.random() < 0.3:
        product = product.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Keep the product's centre in the middle part of the frame (a shopper aims at it), off-centre all the same.
    cx = width / 2 + float(rng.uniform(-0.15, 0.15)) * short
    cy = height / 2 + float(rng.uniform(-0.15, 0.15)) * short
    photo.alpha_composite(product, (int(cx - product.width / 2), int(cy - product.height / 2)))
    if rng.random() < conditions.occlusion_probability:
        _occlude(photo, rng, cx, cy, target)
    pixels = np.asarray(photo.convert("RGB"), np.float32)
    pixels = _light(pixels, rng, conditions.colour_cast)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    blur = float(rng.uniform(0, conditions.max_blur))
    if blur > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    sigma = float(rng.uniform(0, conditions.max_noise))
    if sigma > 0.5:
        noisy = np.asarray(image, np.float32) + rng.normal(0, sigma, (height, width, 1)).astype(np.float32)
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=int(rng.integers(*conditions.jpeg_quality)))
    out.seek(0)
    return Image.open(out).convert("RGB")


def customer_photo_jpeg(spec: ProductSpec, seed: int, conditions: PhotoConditions = DEFAULT_CONDITIONS) -> bytes:
    out = io.BytesIO()
    customer_photo(spec, seed, conditions).save(out, format="JPEG", quality=92)
    return out.getvalue()


def _clutter(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A room-like background: a wall/table split, a gradient, and random household shapes."""
    top, bottom = rng.uniform(40, 230, 3), rng.uniform(30, 220, 3)
    split = float(rng.uniform(0.3, 0.8))
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    colour = np.where(rows[..., None] < split, top, bottom).astype(np.float32)
    colour = colour * (0.8 + 0.4 * rows[..., None])
    pixels = np.broadcast_to(colour, (height, width, 3)).astype(np.uint8)
    background = Image.fromarray(pixels, "RGB").convert("RGBA")
    draw = ImageDraw.Draw(background)
    for _ in range(int(rng.integers(4, 14))):
        x0, y0 = float(rng.uniform(-0.2, 1.0)) * width, float(rng.uniform(-0.2, 1.0)) * height
        w, h = float(rng.uniform(0.05, 0.5)) * width, float(rng.uniform(0.05, 0.5)) * height
        fill = (*tuple(int(c) for c in rng.integers(0, 256, 3)), int(rng.integers(120, 256)))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=fill)
        elif kind == 1:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=fill)
        else:
            draw.line((x0, y0, x0 + w, y0 + h), fill=fill, width=int(rng.integers(2, 12)))
    return background.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3.0))))


def _occlude(photo: Image.Image, rng: np.random.Generator, cx: float, cy: float, size: int) -> None:
    """A finger or a stray object over part of the product (roughly a tenth to a fifth of it)."""
    draw = ImageDraw.Draw(photo)
    angle = float(rng.uniform(0, 2 * np.pi))
    reach = size * float(rng.uniform(0.25, 0.4))
    x, y = cx + np.cos(angle) * reach, cy + np.sin(angle) * reach
    r = size * float(rng.uniform(0.1, 0.18))
    if rng.random() < 0.6:
        skin = _SKIN[int(rng.integers(0, len(_SKIN)))]
        ex, ey = x + np.cos(angle) * size, y + np.sin(angle) * size  # the finger comes from outside the frame
        draw.line((x, y, ex, ey), fill=(*skin, 255), width=int(2 * r))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*skin, 255))
    else:
        fill = (*tuple(int(c) for c in rng.integers(0, 256, 3)), 255)
        draw.rectangle((x - r, y - r * 1.5, x + r, y + r * 1.5), fill=fill)


def _light(pixels: np.ndarray, rng: np.random.Generator, cast: float) -> np.ndarray:
    """Exposure, contrast, a colour cast (warm bulbs, cool daylight) and a vignette."""
    height, width = pixels.shape[:2]
    gain = rng.uniform(1 - cast, 1 + cast, 3).astype(np.float32) * np.float32(rng.uniform(0.7, 1.2))
    contrast = np.float32(rng.uniform(0.75, 1.15))
    pixels = (pixels - 128.0) * contrast + 128.0
    pixels = pixels * gain
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = ((xx - width / 2) / width) ** 2 + ((yy - height / 2) / height) ** 2
    vignette = 1.0 - np.float32(rng.uniform(0, 0.5)) * distance
    return pixels * vignette[..., None]

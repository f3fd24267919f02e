"""Deterministic photo-like JPEGs for benchmarks: shapes, gradients and sensor-like noise.

Smooth synthetic images compress (and decode) unrealistically fast; added noise gives the
JPEG a camera photo's entropy, so decode timings are honest. The noise is drawn at half
resolution, as demosaicing and denoising leave it in a phone's output: about 1.8 MB per
12-megapixel photo at quality 90. Decode time grows with the bytes, so the benchmark
reports the mean file size beside its timings.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def synthetic_photo(seed: int, size: tuple[int, int] = (4000, 3000), quality: int = 90) -> bytes:
    """A `size` JPEG (default 12 megapixels) drawn from `seed`; a few MB, like a phone camera's."""
    rng = np.random.default_rng(seed)
    small = (size[0] // 8, size[1] // 8)
    base = np.linspace(rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), small[1], dtype=np.float32)
    canvas = Image.fromarray(np.repeat(base[:, None, :], small[0], axis=1).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    for _ in range(40):
        x0, y0 = rng.integers(0, small[0]), rng.integers(0, small[1])
        x1, y1 = x0 + rng.integers(10, small[0] // 3), y0 + rng.integers(10, small[1] // 3)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    canvas = canvas.filter(ImageFilter.GaussianBlur(1.5)).resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(canvas, dtype=np.int16)
    grain = Image.fromarray(rng.normal(0, 6, size=(size[1] // 2, size[0] // 2)).astype(np.float32), "F")
    noise = np.asarray(grain.resize(size, Image.Resampling.BILINEAR)).astype(np.int16)[..., None]
    photo = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=quality)
    return out.getvalue()

"""Clean product shots of demo products, drawn with PIL from a `ProductSpec`.

Each product type has a drawer that paints its parts as masks; every mask is filled from a
"surface" (colour, material look, pattern), so shape, colour, material and pattern vary
independently and exactly as the spec says. Drawing happens at twice the output size and is
scaled down, which anti-aliases the edges. The object is returned on a transparent layer too,
so the customer-photo simulator can put the same product in front of another background.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from functools import cached_property

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from demo.products import COLOURS, MATERIALS, ProductSpec

SHOT_SIZE = 256
_SCALE = 2  # supersampling factor
_STUDIO = (246, 246, 244)


def render_layer(spec: ProductSpec, size: int = SHOT_SIZE) -> Image.Image:
    """The product alone on a transparent RGBA layer of `size`², centred, with a soft contact shadow."""
    big = size * _SCALE
    painter = _Painter(spec, big)
    _DRAWERS[spec.type](painter)
    return painter.finish(size)


def render_shot(spec: ProductSpec, size: int = SHOT_SIZE, layer: Image.Image | None = None) -> Image.Image:
    """A clean catalog photo: the product on a light studio background. `layer` reuses a rendered product
    (the layer is most of the cost; the customer-photo simulator starts from the same one)."""
    layer = layer if layer is not None else render_layer(spec, size)
    background = _studio_background(size)
    background.alpha_composite(layer)
    return background.convert("RGB")


def render_shot_jpeg(spec: ProductSpec, size: int = SHOT_SIZE, quality: int = 92) -> bytes:
    out = io.BytesIO()
    render_shot(spec, size).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _studio_background(size: int) -> Image.Image:
    """A near-white sweep, slightly darker at the bottom, as product photographers shoot."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    top = np.asarray(_STUDIO, np.float32)
    pixels = top - ramp * np.float32(14.0)
    pixels = np.broadcast_to(pixels, (size, size, 3))
    alpha = np.full((size, size, 1), 255, np.float32)
    return Image.fromarray(np.concatenate([pixels, alpha], axis=2).astype(np.uint8), "RGBA")


def _rgb(name: str) -> np.ndarray:
    look = MATERIALS.get(name)
    colour = look if look is not None else COLOURS[name]
    return np.asarray(colour, np.float32)


class _Painter:
    """Fills masks from surfaces on a transparent canvas; knows the spec's colours, material and pattern."""

    def __init__(self, spec: ProductSpec, size: int) -> None:
        self.spec = spec
        self.size = size
        self.rng = np.random.default_rng(spec.render_seed)
        self.canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        self._outlined = Image.new("L", (size, size), 0)
        self.u = size / 512.0  # drawers use a 512-unit square
        self.jitter = lambda spread=0.08: 1.0 + float(self.rng.uniform(-spread, spread))
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        self._yy, self._xx = yy, xx
        self.angle = float(self.rng.uniform(-6, 6))

    # --- surfaces (made on first use: each costs a full-canvas pass) -----------------------------------------
    @cached_property
    def main(self) -> Image.Image:
        spec = self.spec
        return self._surface(_rgb(spec.colour), spec.material, spec.pattern, _rgb(spec.accent))

    @cached_property
    def accent(self) -> Image.Image:
        return self._surface(_rgb(self.spec.accent), "plastic", "plain")

    @cached_property
    def metal(self) -> Image.Image:
        metal = self.spec.material if self.spec.material in ("gold", "silver", "rose gold") else "silver"
        return self._surface(_rgb(metal), "silver", "plain")

    @cached_property
    def dark(self) -> Image.Image:
        return self._surface(np.asarray((30, 30, 34), np.float32), "plastic", "plain")

    @cached_property
    def light(self) -> Image.Image:
        return self._surface(np.asarray((236, 236, 232), np.float32), "ceramic", "plain")

    def _surface(
        self, colour: np.ndarray, material: str, pattern: str, second: np.ndarray | None = None
    ) -> Image.Image:
        xx, yy = self._xx, self._yy
        pixels = np.empty((self.size, self.size, 3), np.float32)
        pixels[...] = colour
        if pattern != "plain" and second is not None:
            period = 0.07
            if pattern == "striped":
                on = (np.floor((xx + yy * 0.3) / period) % 2) == 0
            elif pattern == "dotted":
                cx, cy = (xx / period) % 1 - 0.5, (yy / period) % 1 - 0.5
                on = cx * cx + cy * cy < 0.09
            elif pattern == "checked":
                on = ((np.floor(xx / period) + np.floor(yy / period)) % 2) == 0
            else:  # zigzag
                on = (np.floor((yy + np.abs((xx / period) % 1 - 0.5) * period) / period) % 2) == 0
            pixels[on] = second
        shade = 1.0 - 0.25 * xx  # light from the left
        if material in ("gold", "silver", "rose gold"):
            bands = 0.75 + 0.45 * np.sin(xx * 14.0 + yy * 6.0) ** 2
            shade = shade * bands
        elif material == "wood":
            grain = 0.85 + 0.15 * np.sin(yy * 90.0 + 6.0 * np.sin(xx * 9.0))
            shade = shade * grain
        elif material == "fabric":
            weave = 0.92 + 0.08 * ((np.floor(xx * 160) + np.floor(yy * 160)) % 2)
            shade = shade * weave
        elif material == "leather":
            grain = self.rng.normal(1.0, 0.05, (self.size // 16, self.size // 16)).astype(np.float32)
            mottle = np.asarray(Image.fromarray(grain, "F").resize((self.size, self.size), Image.Resampling.BICUBIC))
            shade = shade * mottle
        elif material == "ceramic":
            shade = shade * (1.0 + 0.25 * np.exp(-(((xx - 0.38) / 0.05) ** 2)))
        elif material == "glass":
            pixels = pixels * 0.6 + 255.0 * 0.4
            shade = shade * (1.0 + 0.35 * np.exp(-(((xx - 0.4) / 0.03) ** 2)))
        pixels *= shade[..., None]
        np.clip(pixels, 0, 255, out=pixels)
        pixels = pixels.astype(np.uint8)
        return Image.fromarray(pixels, "RGB")

    # --- drawing ------------------------------------------------------------------------------------------
    def fill(
        self,
        surface: Image.Image,
        shape: Callable[[ImageDraw.ImageDraw], None],
        outline: bool = True,
        grow: int = 0,
    ) -> None:
        """Paint the region `shape` draws (white on a mask, widened by `grow` pixels) with `surface`.

        `outline` parts get a thin dark edge where they border transparent canvas (drawn once, in `finish`);
        thin strokes (chains, laces) skip it so they do not turn into dark lines."""
        mask = Image.new("L", (self.size, self.size), 0)
        shape(ImageDraw.Draw(mask))
        if grow:
            mask = mask.filter(ImageFilter.MaxFilter(2 * grow + 1))
        if outline:
            self._outlined.paste(255, mask=mask)
        self.canvas.paste(surface, mask=mask)

    def p(self, *values: float) -> list[float]:
        """512-unit coordinates to canvas pixels."""
        return [v * self.u for v in values]

    def finish(self, size: int) -> Image.Image:
        """Outline, scale down (anti-aliasing), tilt a little (the spec's pose) and add a soft contact shadow."""
        edge = self._outlined.filter(ImageFilter.MaxFilter(5))
        dark = Image.new("RGBA", (self.size, self.size), (40, 40, 40, 255))
        canvas = Image.composite(self.canvas, dark, self.canvas.getchannel("A"))
        canvas.putalpha(ImageChops.lighter(self.canvas.getchannel("A"), edge))
        layer = canvas.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        layer = layer.rotate(self.angle, resample=Image.Resampling.BICUBIC)
        box = layer.getbbox()
        shadow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        if box:
            x0, _, x1, y1 = box
            ImageDraw.Draw(shadow).ellipse(
                (x0 + 0.05 * (x1 - x0), y1 - 0.03 * size, x1 - 0.05 * (x1 - x0), y1 + 0.03 * size),
                fill=(0, 0, 0, 70),
            )
            shadow = shadow.filter(ImageFilter.BoxBlur(size / 80))
        shadow.alpha_composite(layer)
        return shadow


# --- drawers, one per product type (coordinates in a 512-unit square) ------------------------------------


def _earrings(pt: _Painter) -> None:
    shape = pt.spec.shape
    r = 62 * pt.jitter()
    for cx in (170, 342):
        if shape == "hoop":
            pt.fill(
                pt.metal,
                lambda d, cx=cx: d.ellipse(
                    pt.p(cx - r, 200 - r, cx + r, 200 + r * 1.2), outline=255, width=int(20 * pt.u)
                ),
            )
            pt.fill(
                pt.accent,
                lambda d, cx=cx: d.ellipse(pt.p(cx - 20, 200 + r * 1.2 - 22, cx + 20, 200 + r * 1.2 + 18), fill=255),
            )
        elif shape == "stud":
            pt.fill(pt.metal, lambda d, cx=cx: d.ellipse(pt.p(cx - 52, 206, cx + 52, 310), fill=255))
            pt.fill(pt.accent, lambda d, cx=cx: d.regular_polygon((*pt.p(cx, 258), 38 * pt.u), 8, fill=255))
        else:  # drop
            pt.fill(
                pt.metal, lambda d, cx=cx: d.ellipse(pt.p(cx - 18, 120, cx + 18, 156), outline=255, width=int(8 * pt.u))
            )
            pt.fill(pt.metal, lambda d, cx=cx: d.rectangle(pt.p(cx - 5, 154, cx + 5, 230), fill=255))
            pt.fill(pt.metal, lambda d, cx=cx: d.ellipse(pt.p(cx - 46, 222, cx + 46, 370), fill=255))
            pt.fill(pt.accent, lambda d, cx=cx: d.ellipse(pt.p(cx - 34, 236, cx + 34, 356), fill=255))


def _ring(pt: _Painter) -> None:
    shape = pt.spec.shape
    w = 150 * pt.jitter()
    band = 22 if shape == "band" else 16
    pt.fill(pt.metal, lambda d: d.ellipse(pt.p(256 - w, 230, 256 + w, 420), outline=255, width=int(band * pt.u * 2)))
    if shape == "band":
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(236, 398, 276, 436), fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(180, 390, 212, 422), fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(300, 390, 332, 422), fill=255))
    elif shape == "solitaire":
        pt.fill(pt.metal, lambda d: d.polygon(pt.p(220, 240, 292, 240, 272, 200, 240, 200), fill=255))
        pt.fill(pt.accent, lambda d: d.polygon(pt.p(256, 250, 196, 170, 226, 120, 286, 120, 316, 170), fill=255))
    else:  # signet
        pt.fill(pt.metal, lambda d: d.ellipse(pt.p(176, 170, 336, 270), fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(206, 186, 306, 254), fill=255))


def _necklace(pt: _Painter) -> None:
    shape = pt.spec.shape
    depth = 300 * pt.jitter()
    points = [(256 + 170 * math.sin(t), 80 + depth * (math.cos(t) - 0.17) / 1.3) for t in np.linspace(-1.4, 1.4, 41)]
    if shape == "beaded":
        for i, (x, y) in enumerate(points):
            surface = pt.accent if i % 2 == 0 else pt.metal
            pt.fill(surface, lambda d, x=x, y=y: d.ellipse(pt.p(x - 13, y - 13, x + 13, y + 13), fill=255), False)
        return
    flat = [c for point in points for c in pt.p(*point)]
    pt.fill(pt.metal, lambda d: d.line(flat, fill=255, width=int(9 * pt.u), joint="curve"), False)
    bottom = max(y for _, y in points)
    if shape == "pendant":
        pt.fill(pt.metal, lambda d: d.ellipse(pt.p(218, bottom - 4, 294, bottom + 100), fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(230, bottom + 8, 282, bottom + 88), fill=255))
    else:  # chain with a small charm
        pt.fill(pt.accent, lambda d: d.regular_polygon((*pt.p(256, bottom + 26), 30 * pt.u), 4, fill=255))


def _watch(pt: _Painter) -> None:
    case = pt.metal if pt.spec.material in ("gold", "silver") else pt.main
    pt.fill(pt.accent, lambda d: d.rounded_rectangle(pt.p(206, 40, 306, 472), radius=30 * pt.u, fill=255))
    r = 110 * pt.jitter(0.05)
    if pt.spec.shape == "round":
        pt.fill(case, lambda d: d.ellipse(pt.p(256 - r, 256 - r, 256 + r, 256 + r), fill=255))
        pt.fill(pt.light, lambda d: d.ellipse(pt.p(256 - r + 20, 256 - r + 20, 256 + r - 20, 256 + r - 20), fill=255))
    else:
        pt.fill(
            case, lambda d: d.rounded_rectangle(pt.p(256 - r, 256 - r, 256 + r, 256 + r), radius=26 * pt.u, fill=255)
        )
        pt.fill(pt.light, lambda d: d.rectangle(pt.p(256 - r + 20, 256 - r + 20, 256 + r - 20, 256 + r - 20), fill=255))
    pt.fill(case, lambda d: d.rectangle(pt.p(256 + r - 4, 244, 256 + r + 18, 268), fill=255))
    pt.fill(pt.dark, lambda d: d.line(pt.p(256, 256, 256, 256 - r * 0.65), fill=255, width=int(8 * pt.u)), False)
    pt.fill(
        pt.dark, lambda d: d.line(pt.p(256, 256, 256 + r * 0.45, 256 + r * 0.2), fill=255, width=int(8 * pt.u)), False
    )


def _mug(pt: _Painter) -> None:
    w, h = {"classic": (210, 240), "tall": (170, 310), "espresso": (190, 150)}[pt.spec.shape]
    w, h = w * pt.jitter(), h * pt.jitter()
    x0, y0, x1, y1 = 236 - w / 2, 256 - h / 2, 236 + w / 2, 256 + h / 2
    pt.fill(
        pt.accent,
        lambda d: d.ellipse(pt.p(x1 - 40, 256 - h * 0.3, x1 + 80, 256 + h * 0.3), outline=255, width=int(26 * pt.u)),
    )
    pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(x0, y0, x1, y1), radius=18 * pt.u, fill=255))
    pt.fill(pt.dark, lambda d: d.ellipse(pt.p(x0 + 6, y0 - 18, x1 - 6, y0 + 18), fill=255))


def _sneakers(pt: _Painter) -> None:
    high = pt.spec.shape == "high-top"
    top = 120 if high else 200
    runner = pt.spec.shape == "runner"
    body = [60, 360, 60, 290, 170, 250, 200, top, 300, top, 330, 250, 440, 290, 470, 340, 470, 360]
    if runner:
        body = [60, 360, 70, 280, 190, 230, 230, 200, 320, 210, 350, 260, 460, 300, 480, 360]
    pt.fill(pt.main, lambda d: d.polygon(pt.p(*body), fill=255))
    pt.fill(pt.accent, lambda d: d.rounded_rectangle(pt.p(50, 350, 482, 400), radius=20 * pt.u, fill=255))
    for i in range(4 if high else 3):
        y = top + 40 + i * 28
        pt.fill(pt.light, lambda d, y=y: d.line(pt.p(230, y, 300, y - 14), fill=255, width=int(8 * pt.u)), False)


def _handbag(pt: _Painter) -> None:
    shape = pt.spec.shape
    if shape == "tote":
        pt.fill(pt.accent, lambda d: d.arc(pt.p(170, 90, 342, 300), 180, 360, fill=255, width=int(20 * pt.u)))
        pt.fill(pt.main, lambda d: d.polygon(pt.p(120, 200, 392, 200, 430, 440, 82, 440), fill=255))
    elif shape == "clutch":
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(70, 180, 442, 360), radius=26 * pt.u, fill=255))
        pt.fill(pt.accent, lambda d: d.polygon(pt.p(70, 190, 442, 190, 256, 290), fill=255))
    else:  # satchel
        pt.fill(pt.accent, lambda d: d.arc(pt.p(90, 40, 422, 380), 180, 360, fill=255, width=int(14 * pt.u)))
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(100, 200, 412, 430), radius=40 * pt.u, fill=255))
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(100, 200, 412, 320), radius=40 * pt.u, fill=255))
        pt.fill(pt.accent, lambda d: d.rectangle(pt.p(236, 300, 276, 340), fill=255))


def _hat(pt: _Painter) -> None:
    shape = pt.spec.shape
    if shape == "cap":
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(230, 300, 480, 350), fill=255))
        pt.fill(pt.main, lambda d: d.chord(pt.p(70, 150, 370, 450), 180, 360, fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(205, 140, 235, 170), fill=255))
    elif shape == "fedora":
        pt.fill(pt.main, lambda d: d.ellipse(pt.p(40, 300, 472, 390), fill=255))
        pt.fill(pt.main, lambda d: d.polygon(pt.p(150, 340, 170, 160, 256, 140, 342, 160, 362, 340), fill=255))
        pt.fill(pt.accent, lambda d: d.rectangle(pt.p(154, 290, 358, 330), fill=255))
    else:  # beanie
        pt.fill(pt.main, lambda d: d.chord(pt.p(110, 130, 402, 460), 180, 360, fill=255))
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(100, 280, 412, 380), radius=20 * pt.u, fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(216, 70, 296, 150), fill=255))


def _lamp(pt: _Painter) -> None:
    shape = pt.spec.shape
    if shape == "floor":
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(248, 150, 264, 450), fill=255))
        pt.fill(pt.main, lambda d: d.ellipse(pt.p(176, 440, 336, 480), fill=255))
        pt.fill(pt.accent, lambda d: d.polygon(pt.p(196, 40, 316, 40, 360, 170, 152, 170), fill=255))
    elif shape == "desk":
        pt.fill(pt.main, lambda d: d.line(pt.p(160, 440, 220, 260, 330, 190), fill=255, width=int(16 * pt.u)), False)
        pt.fill(pt.main, lambda d: d.ellipse(pt.p(90, 420, 240, 470), fill=255))
        pt.fill(pt.accent, lambda d: d.polygon(pt.p(300, 150, 360, 170, 440, 300, 320, 320), fill=255))
    else:  # table
        pt.fill(pt.main, lambda d: d.ellipse(pt.p(176, 250, 336, 440), fill=255))
        pt.fill(pt.accent, lambda d: d.polygon(pt.p(170, 80, 342, 80, 400, 250, 112, 250), fill=255))


def _chair(pt: _Painter) -> None:
    shape = pt.spec.shape
    if shape == "stool":
        for x in (170, 236, 330):
            pt.fill(
                pt.main,
                lambda d, x=x: d.line(pt.p(x + 10, 220, x - 10 + (x - 236) * 0.3, 460), fill=255, width=int(18 * pt.u)),
                False,
            )
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(140, 180, 372, 250), fill=255))
    elif shape == "armchair":
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(110, 100, 402, 330), radius=40 * pt.u, fill=255))
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(60, 220, 140, 420), radius=30 * pt.u, fill=255))
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(372, 220, 452, 420), radius=30 * pt.u, fill=255))
        pt.fill(pt.accent, lambda d: d.rounded_rectangle(pt.p(130, 300, 382, 380), radius=16 * pt.u, fill=255))
        pt.fill(pt.dark, lambda d: d.rectangle(pt.p(90, 420, 110, 460), fill=255))
        pt.fill(pt.dark, lambda d: d.rectangle(pt.p(402, 420, 422, 460), fill=255))
    else:  # dining
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(150, 60, 180, 460), fill=255))
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(332, 60, 362, 460), fill=255))
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(150, 80, 362, 180), fill=255))
        pt.fill(pt.accent, lambda d: d.polygon(pt.p(120, 280, 392, 280, 372, 320, 140, 320), fill=255))
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(140, 320, 168, 460), fill=255))
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(344, 320, 372, 460), fill=255))


def _vase(pt: _Painter) -> None:
    shape = pt.spec.shape
    if shape == "round":
        pt.fill(pt.main, lambda d: d.ellipse(pt.p(116, 170, 396, 450), fill=255))
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(206, 110, 306, 200), fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(196, 96, 316, 126), fill=255))
    elif shape == "tall":
        pt.fill(pt.main, lambda d: d.polygon(pt.p(190, 60, 322, 60, 350, 300, 310, 460, 202, 460, 162, 300), fill=255))
        pt.fill(pt.accent, lambda d: d.ellipse(pt.p(180, 46, 332, 76), fill=255))
    else:  # bottle
        pt.fill(pt.main, lambda d: d.rounded_rectangle(pt.p(150, 220, 362, 460), radius=60 * pt.u, fill=255))
        pt.fill(pt.main, lambda d: d.rectangle(pt.p(226, 70, 286, 240), fill=255))
        pt.fill(pt.accent, lambda d: d.rectangle(pt.p(218, 56, 294, 84), fill=255))


def _tshirt(pt: _Painter) -> None:
    body = [
        150,
        90,
        210,
        70,
        302,
        70,
        362,
        90,
        470,
        170,
        420,
        240,
        370,
        205,
        370,
        450,
        142,
        450,
        142,
        205,
        92,
        240,
        42,
        170,
    ]
    pt.fill(pt.main, lambda d: d.polygon(pt.p(*body), fill=255))
    if pt.spec.shape == "v-neck":
        pt.fill(pt.accent, lambda d: d.line(pt.p(210, 72, 256, 150, 302, 72), fill=255, width=int(16 * pt.u)), False)
    else:
        pt.fill(pt.accent, lambda d: d.arc(pt.p(206, 30, 306, 120), 0, 180, fill=255, width=int(16 * pt.u)))
    if pt.spec.shape == "pocket":
        pt.fill(pt.accent, lambda d: d.rectangle(pt.p(290, 170, 345, 230), fill=255))


def _sunglasses(pt: _Painter) -> None:
    frame = pt.metal if pt.spec.material in ("gold", "silver", "rose gold") else pt.main
    shape = pt.spec.shape

    def lens(d: ImageDraw.ImageDraw, cx: float) -> None:
        if shape == "aviator":
            d.polygon(pt.p(cx - 80, 200, cx + 80, 200, cx + 60, 310, cx, 330, cx - 70, 290), fill=255)
        elif shape == "round":
            d.ellipse(pt.p(cx - 72, 190, cx + 72, 334), fill=255)
        else:
            d.polygon(pt.p(cx - 86, 200, cx + 86, 200, cx + 70, 300, cx - 70, 300), fill=255)

    for cx in (160, 352):
        pt.fill(frame, lambda d, cx=cx: lens(d, cx), grow=int(6 * pt.u))
        pt.fill(pt.accent, lambda d, cx=cx: lens(d, cx), outline=False)
    pt.fill(frame, lambda d: d.arc(pt.p(226, 190, 286, 250), 180, 360, fill=255, width=int(12 * pt.u)))
    pt.fill(frame, lambda d: d.line(pt.p(80, 210, 20, 190), fill=255, width=int(12 * pt.u)), False)
    pt.fill(frame, lambda d: d.line(pt.p(432, 210, 492, 190), fill=255, width=int(12 * pt.u)), False)


def _backpack(pt: _Painter) -> None:
    shape = pt.spec.shape
    scale = 0.75 if shape == "mini" else 1.0
    w, h = 150 * scale, 190 * scale
    pt.fill(
        pt.dark,
        lambda d: d.arc(pt.p(256 - 60, 256 - h - 50, 256 + 60, 256 - h + 50), 180, 360, fill=255, width=int(14 * pt.u)),
    )
    pt.fill(
        pt.main, lambda d: d.rounded_rectangle(pt.p(256 - w, 256 - h, 256 + w, 256 + h), radius=50 * pt.u, fill=255)
    )
    if shape == "rolltop":
        pt.fill(
            pt.main,
            lambda d: d.rounded_rectangle(
                pt.p(256 - w - 10, 256 - h - 40, 256 + w + 10, 256 - h + 20), radius=20 * pt.u, fill=255
            ),
        )
        pt.fill(pt.dark, lambda d: d.rectangle(pt.p(246, 256 - h, 266, 256 - h + 90), fill=255))
    pt.fill(
        pt.accent,
        lambda d: d.rounded_rectangle(
            pt.p(256 - w * 0.7, 256 + h * 0.1, 256 + w * 0.7, 256 + h * 0.85), radius=26 * pt.u, fill=255
        ),
    )


_DRAWERS: dict[str, Callable[[_Painter], None]] = {
    "earrings": _earrings,
    "ring": _ring,
    "necklace": _necklace,
    "watch": _watch,
    "mug": _mug,
    "sneakers": _sneakers,
    "handbag": _handbag,
    "hat": _hat,
    "lamp": _lamp,
    "chair": _chair,
    "vase": _vase,
    "t-shirt": _tshirt,
    "sunglasses": _sunglasses,
    "backpack": _backpack,
}

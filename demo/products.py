"""Product specifications for the demo catalog: what each product *is*, drawn from a seed.

A spec fixes everything the renderer draws (type, shape, colours, material, pattern, detail) and
everything a vendor row says (title, category, price, stock), so the words and the picture always
agree: "gold hoop earrings with red stone" is drawn as a gold hoop with a red stone. Product `i`
of seed `s` depends only on `(s, i)`, so a catalog can be regenerated product by product.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

# Named colours (RGB) the renderer paints and the titles speak of.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "orange": (240, 130, 20),
    "yellow": (245, 205, 30),
    "green": (40, 150, 60),
    "teal": (20, 140, 140),
    "blue": (35, 80, 200),
    "navy": (20, 30, 90),
    "purple": (120, 50, 160),
    "pink": (240, 130, 180),
    "brown": (120, 70, 35),
    "black": (25, 25, 25),
    "white": (240, 240, 235),
    "grey": (130, 130, 130),
}

# Material looks: a base colour when the material decides it (metals, wood), else None (the colour is painted).
MATERIALS: dict[str, tuple[int, int, int] | None] = {
    "gold": (212, 170, 60),
    "silver": (190, 195, 200),
    "rose gold": (215, 140, 120),
    "wood": (150, 100, 55),
    "fabric": None,
    "ceramic": None,
    "leather": None,
    "plastic": None,
    "glass": None,
}

PATTERNS = ("plain", "striped", "dotted", "checked", "zigzag")


@dataclass(frozen=True)
class ProductType:
    """One kind of product: its category, the shapes it comes in, the materials it is made of, its price band."""

    name: str  # singular noun used in titles
    category: str
    shapes: tuple[str, ...]
    materials: tuple[str, ...]
    detail: str  # what the accent colour paints ("stone", "strap", "sole"...)
    price: tuple[int, int]
    patterned: bool  # whether a surface pattern makes sense
    plural_title: bool = False  # "earrings" are sold in pairs


PRODUCT_TYPES: tuple[ProductType, ...] = (
    ProductType(
        "earrings",
        "earrings",
        ("hoop", "stud", "drop"),
        ("gold", "silver", "rose gold"),
        "stone",
        (15, 240),
        False,
        True,
    ),
    ProductType(
        "ring", "rings", ("band", "solitaire", "signet"), ("gold", "silver", "rose gold"), "stone", (20, 400), False
    ),
    ProductType(
        "necklace",
        "necklaces",
        ("pendant", "chain", "beaded"),
        ("gold", "silver", "rose gold"),
        "pendant",
        (25, 350),
        False,
    ),
    ProductType(
        "watch", "watches", ("round", "square"), ("gold", "silver", "leather", "plastic"), "strap", (40, 600), False
    ),
    ProductType(
        "mug", "mugs", ("classic", "tall", "espresso"), ("ceramic", "glass", "plastic"), "handle", (6, 30), True
    ),
    ProductType(
        "sneakers",
        "sneakers",
        ("low-top", "high-top", "runner"),
        ("fabric", "leather", "plastic"),
        "sole",
        (45, 180),
        True,
        True,
    ),
    ProductType(
        "handbag", "handbags", ("tote", "clutch", "satchel"), ("leather", "fabric", "plastic"), "strap", (30, 450), True
    ),
    ProductType("hat", "hats", ("cap", "fedora", "beanie"), ("fabric", "leather", "wood"), "band", (12, 90), True),
    ProductType(
        "lamp", "lamps", ("table", "floor", "desk"), ("ceramic", "wood", "glass", "silver"), "shade", (25, 260), True
    ),
    ProductType(
        "chair",
        "chairs",
        ("dining", "armchair", "stool"),
        ("wood", "fabric", "leather", "plastic"),
        "seat",
        (40, 500),
        True,
    ),
    ProductType("vase", "vases", ("round", "tall", "bottle"), ("ceramic", "glass", "wood"), "rim", (15, 120), True),
    ProductType("t-shirt", "t-shirts", ("crew-neck", "v-neck", "pocket"), ("fabric",), "collar", (10, 45), True),
    ProductType(
        "sunglasses",
        "sunglasses",
        ("aviator", "round", "wayfarer"),
        ("gold", "silver", "plastic"),
        "lens",
        (20, 220),
        False,
        True,
    ),
    ProductType(
        "backpack",
        "backpacks",
        ("daypack", "rolltop", "mini"),
        ("fabric", "leather", "plastic"),
        "pocket",
        (30, 200),
        True,
    ),
)
TYPES_BY_NAME = {t.name: t for t in PRODUCT_TYPES}

VENDORS: dict[str, tuple[str, ...]] = {
    # vendor -> brands it sells; every vendor sells every type, in its own share
    "northwind-goods": ("Northwind", "Nordlys"),
    "atelier-sud": ("Atelier Sud", "Maison Clair"),
    "lumen-market": ("Lumen", "Brightside", "Kito"),
}
CURRENCY = "EUR"
# Seeds of the standard evaluation set (`vitrine eval`): its catalog and its customer photos.
# Training uses other seeds (demo/train.py checks), so no evaluation photo is ever trained on.
EVAL_CATALOG_SEED = 7
EVAL_PHOTO_SEED = 424242
# Shapes that are nouns of their own: "red fabric armchair", not "red fabric armchair chair".
SHAPE_NOUNS = frozenset({"armchair", "stool", "cap", "fedora", "beanie"})


@dataclass(frozen=True)
class ProductSpec:
    """Everything about one generated product; the renderer and the catalog row both read it."""

    seed: int
    index: int
    type: str
    shape: str
    colour: str  # main colour name; the material's name for metals and wood ("gold", "wood")
    accent: str  # accent colour name (detail)
    material: str
    pattern: str
    vendor: str
    brand: str
    price: Decimal
    in_stock: bool
    render_seed: int  # drives small drawing variations (proportions, pose)

    @property
    def product_type(self) -> ProductType:
        return TYPES_BY_NAME[self.type]

    @property
    def category(self) -> str:
        return self.product_type.category

    @property
    def sku(self) -> str:
        return f"{self.vendor[:3].upper()}-{self.seed % 100000:05d}-{self.index:06d}"

    @property
    def title(self) -> str:
        """A vendor-style title naming what is drawn, e.g. "Gold hoop earrings with red stone"."""
        kind = self.product_type
        pattern = [] if self.pattern == "plain" else [self.pattern]
        material = [] if self.colour == self.material or kind.materials == ("fabric",) else [self.material]
        noun = [self.shape] if self.shape in SHAPE_NOUNS else [self.shape, kind.name]
        words = [self.colour, *pattern, *material, *noun, "with", self.accent, kind.detail]
        text = " ".join(words)
        return text[0].upper() + text[1:]

    @property
    def colour_label(self) -> str:
        """The colour a shopper would name: the metal or wood where the material decides it."""
        return self.colour

    @property
    def description(self) -> str:
        stock = "In stock, ships in 2 days." if self.in_stock else "Currently out of stock."
        return f"{self.title} by {self.brand}. {self.material.capitalize()} finish, {self.pattern} surface. {stock}"

    def row(self, image: str) -> dict[str, str]:
        """The catalog row, in the column names ingest reads."""
        return {
            "sku": self.sku,
            "title": self.title,
            "price": f"{self.price:.2f}",
            "currency": CURRENCY,
            "image": image,
            "category": self.category,
            "brand": self.brand,
            "color": self.colour_label,
            "in_stock": "yes" if self.in_stock else "no",
            "description": self.description,
        }


def product_spec(seed: int, index: int) -> ProductSpec:
    """Product `index` of the catalog drawn from `seed`; depends on nothing else."""
    rng = np.random.default_rng([seed, index, 0x5EED])
    kind = PRODUCT_TYPES[index % len(PRODUCT_TYPES)] if index < len(PRODUCT_TYPES) else _choice(rng, PRODUCT_TYPES)
    shape = _choice(rng, kind.shapes)
    material = _choice(rng, kind.materials)
    colour_names = list(COLOURS)
    colour = _choice(rng, colour_names)
    accent = _choice(rng, [c for c in colour_names if c != colour])
    fixed_look = MATERIALS[material] is not None  # metals and wood bring their own colour and texture
    if fixed_look:
        colour = material
    patterned = kind.patterned and not fixed_look and rng.random() < 0.45
    pattern = _choice(rng, PATTERNS[1:]) if patterned else "plain"
    vendor = _choice(rng, list(VENDORS))
    brand = _choice(rng, VENDORS[vendor])
    low, high = kind.price
    premium = {"gold": 1.6, "rose gold": 1.4, "leather": 1.3, "silver": 1.1, "wood": 1.1}.get(material, 1.0)
    price = Decimal(str(round(float(rng.uniform(low, high)) * premium, 0))) - Decimal("0.01")
    return ProductSpec(
        seed=seed,
        index=index,
        type=kind.name,
        shape=shape,
        colour=colour,
        accent=accent,
        material=material,
        pattern=pattern,
        vendor=vendor,
        brand=brand,
        price=max(price, Decimal("4.99")),
        in_stock=bool(rng.random() < 0.85),
        render_seed=int(rng.integers(0, 2**31)),
    )


def product_specs(seed: int, count: int) -> list[ProductSpec]:
    """The first `count` products of seed `seed` (the first 14 cover every type once)."""
    return [product_spec(seed, i) for i in range(count)]


def _choice(rng: np.random.Generator, options):  # type: ignore[no-untyped-def]
    return options[int(rng.integers(0, len(options)))]

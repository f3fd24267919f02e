"""Deterministic int64 ids: a product from (vendor, sku), an image from (product, position).

Re-ingesting a catalog, even after a crash, produces the same ids, so upserts land on the same
rows and vectors. An image id packs its product id and position (product << 4 | position), so
search results roll up from images to products with a shift, no lookup.

Customer views (a customer's photo an operator confirmed as a product, added as one more vector of
that product) use the same packing with bit 62 set: `view_image_id(product, slot)`. Catalog images
already use all 16 positions, so the flag keeps the two kinds apart; product ids stay below 2**58,
so `product << 4` never reaches bit 62 and every id stays a positive int64. `product_of_image`
masks the flag, so the roll-up to products treats a view like any other image of its product.
"""

from __future__ import annotations

import hashlib

MAX_IMAGES_PER_PRODUCT = 16
MAX_VIEWS_PER_PRODUCT = 16
#: Vectors one product can hold in an index: its catalog images and its customer views.
MAX_VECTORS_PER_PRODUCT = MAX_IMAGES_PER_PRODUCT + MAX_VIEWS_PER_PRODUCT
_PRODUCT_BITS = 58  # product << 4 stays below the view flag
_PRODUCT_MASK = (1 << _PRODUCT_BITS) - 1
VIEW_FLAG = 1 << 62


def product_id(vendor: str, sku: str) -> int:
    digest = hashlib.blake2b(f"{vendor}\x1f{sku}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _PRODUCT_MASK or 1


def image_id(product: int, position: int) -> int:
    if not 0 <= position < MAX_IMAGES_PER_PRODUCT:
        raise ValueError(f"image position {position} out of range")
    return (product << 4) | position


def view_image_id(product: int, slot: int) -> int:
    """The vector id of a product's customer view in `slot` (0..15)."""
    if not 0 <= slot < MAX_VIEWS_PER_PRODUCT:
        raise ValueError(f"customer view slot {slot} out of range")
    if not 0 < product <= _PRODUCT_MASK:
        raise ValueError(f"product id {product} out of range")
    return VIEW_FLAG | (product << 4) | slot


def is_customer_view(image: int) -> bool:
    return bool(int(image) & VIEW_FLAG)


def product_of_image(image: int) -> int:
    """The product of a catalog image or of a customer view."""
    return (image >> 4) & _PRODUCT_MASK

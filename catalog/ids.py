"""Deterministic int64 ids: a product from (vendor, sku), an image from (product, position).

Re-ingesting a catalog, even after a crash, produces the same ids, so upserts land on the same
rows and vectors. An image id packs its product id and position (product << 4 | position), so
search results roll up from images to products with a shift, no lookup.
"""

from __future__ import annotations

import hashlib

MAX_IMAGES_PER_PRODUCT = 16
_PRODUCT_BITS = 58  # product << 4 stays a positive int64


def product_id(vendor: str, sku: str) -> int:
    digest = hashlib.blake2b(f"{vendor}\x1f{sku}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << _PRODUCT_BITS) - 1) or 1


def image_id(product: int, position: int) -> int:
    if not 0 <= position < MAX_IMAGES_PER_PRODUCT:
        raise ValueError(f"image position {position} out of range")
    return (product << 4) | position


def product_of_image(image: int) -> int:
    return image >> 4

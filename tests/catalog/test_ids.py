"""Image ids: catalog images and customer views pack (product, position) apart, and both roll up."""

from __future__ import annotations

import pytest

from catalog.ids import (
    MAX_VIEWS_PER_PRODUCT,
    image_id,
    is_customer_view,
    product_id,
    product_of_image,
    view_image_id,
)


@pytest.mark.parametrize(("vendor", "sku"), [("acme", "SKU-00001"), ("globex", "x" * 128), ("a", "b")])
def test_views_and_images_round_trip_to_their_product_and_never_collide(vendor: str, sku: str) -> None:
    product = product_id(vendor, sku)
    images = {image_id(product, position) for position in range(16)}
    views = {view_image_id(product, slot) for slot in range(MAX_VIEWS_PER_PRODUCT)}
    assert len(images | views) == 32  # no view id is an image id
    for vector_id in images | views:
        assert 0 < vector_id < 2**63  # a positive int64: a FAISS id
        assert product_of_image(vector_id) == product
    assert not any(is_customer_view(i) for i in images)
    assert all(is_customer_view(v) for v in views)
    assert sorted(v & 0xF for v in views) == list(range(16))


def test_the_largest_product_id_keeps_the_flag_apart() -> None:
    largest = 2**58 - 1
    assert product_of_image(view_image_id(largest, 15)) == largest
    assert product_of_image(image_id(largest, 15)) == largest
    assert not is_customer_view(image_id(largest, 15))


@pytest.mark.parametrize(("product", "slot"), [(1, -1), (1, 16), (0, 0), (2**58, 0)])
def test_out_of_range_views_are_refused(product: int, slot: int) -> None:
    with pytest.raises(ValueError):
        view_image_id(product, slot)

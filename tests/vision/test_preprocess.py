"""Preprocessing reproduces open_clip's own inference transform to within 1e-5 per value."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
from open_clip.transform import image_transform
from PIL import Image

from vision.decode import decode_image
from vision.open_clip_loader import register_project_configs
from vision.preprocess import PreprocessConfig, preprocess, preprocess_batch

SIZES = [(640, 480), (480, 640), (224, 224), (225, 224), (1001, 333), (97, 211), (50, 30), (3000, 40)]


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_matches_the_transform_open_clip_builds_for_the_model():
    register_project_configs()
    _, _, transform = open_clip.create_model_and_transforms("test-tiny")
    config = PreprocessConfig(image_size=(64, 64))
    for seed, size in enumerate(SIZES):
        image = _noise(size, seed)
        expected = transform(image).numpy()
        got = preprocess(image, config)
        assert got.shape == expected.shape == (3, 64, 64)
        assert got.dtype == np.float32
        assert np.abs(got - expected).max() <= 1e-5, size


@pytest.mark.parametrize("resize_mode", ["shortest", "longest", "squash"])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("image_size", [(224, 224), (256, 192)])
def test_matches_open_clip_for_every_resize_mode(resize_mode, interpolation, image_size):
    config = PreprocessConfig(
        image_size=image_size,
        mean=(0.5, 0.4, 0.3),
        std=(0.2, 0.25, 0.3),
        resize_mode=resize_mode,
        interpolation=interpolation,
        fill_color=0,
    )
    transform = image_transform(
        image_size,
        is_train=False,
        mean=config.mean,
        std=config.std,
        resize_mode=resize_mode,
        interpolation=interpolation,
        fill_color=0,
    )
    for seed, size in enumerate(SIZES):
        image = _noise(size, 100 + seed)
        expected = transform(image).numpy()
        got = preprocess(image, config)
        assert got.shape == expected.shape, size
        assert np.abs(got - expected).max() <= 1e-5, (size, float(np.abs(got - expected).max()))


def test_real_photos_match_open_clip(real_photos):
    register_project_configs()
    _, _, transform = open_clip.create_model_and_transforms("test-tiny")
    config = PreprocessConfig(image_size=(64, 64))
    for path in real_photos[1:13]:
        image = decode_image(path)
        assert np.abs(preprocess(image, config) - transform(image).numpy()).max() <= 1e-5


def test_batch_stacks_single_results():
    images = [_noise(s, i) for i, s in enumerate(SIZES[:3])]
    config = PreprocessConfig()
    batch = preprocess_batch(images, config)
    assert batch.shape == (3, 3, 224, 224)
    for row, image in zip(batch, images, strict=True):
        np.testing.assert_array_equal(row, preprocess(image, config))

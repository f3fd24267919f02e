"""A learned version is an ordinary model: its ONNX towers end in the adapter, exactly normalize(v @ W)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from vision.adapter import ADAPTER_FILE, ADAPTER_MATRIX, build_adapted, project
from vision.embedder import open_embedder
from vision.errors import ModelUnavailable
from vision.model_store import ModelStore
from vision.onnx_embedder import OnnxEmbedder


def _near_identity(dim: int, seed: int, scale: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.eye(dim) + scale * rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)


@pytest.fixture
def models(tiny, tmp_path) -> ModelStore:
    """A model store of its own holding the exported test-tiny (versions and pointers stay here)."""
    store = ModelStore(tmp_path)
    shutil.copytree(tiny[0], store.installed_dir("test-tiny"))
    return store


def test_adapted_towers_are_the_numpy_projection_of_the_parent(models) -> None:
    parent_dir, parent = models.resolve("test-tiny")
    matrix = _near_identity(parent.embed_dim, 1)
    version = build_adapted(parent_dir, parent, "test-tiny+pairs-1", matrix, models.installed_dir("test-tiny+pairs-1"))
    assert version.model_id != parent.model_id and version.model_id.startswith("test-tiny+pairs-1@")
    assert version.source["kind"] == "adapted" and version.source["parent"] == "test-tiny"
    assert version.source["parent_model_id"] == parent.model_id and version.source["matrix"] == ADAPTER_FILE
    np.testing.assert_array_equal(np.load(models.installed_dir("test-tiny+pairs-1") / ADAPTER_FILE), matrix)
    pixels = np.random.default_rng(0).standard_normal((5, 3, 64, 64)).astype(np.float32)
    texts = ["a round red mug", "gold hoop earrings", ""]
    for quantized in (False, True):
        before = OnnxEmbedder(parent_dir, parent, quantized=quantized)
        after = OnnxEmbedder(models.installed_dir("test-tiny+pairs-1"), version, quantized=quantized)
        np.testing.assert_allclose(after.embed_pixels(pixels), project(before.embed_pixels(pixels), matrix), atol=1e-5)
        np.testing.assert_allclose(after.embed_texts(texts), project(before.embed_texts(texts), matrix), atol=1e-5)
        assert not np.allclose(after.embed_pixels(pixels), before.embed_pixels(pixels), atol=1e-3)
    # The graph itself normalises (not only the embedder after it): raw onnxruntime output, unit rows.
    raw_parent = ort.InferenceSession(str(parent_dir / "image.onnx")).run(None, {"pixel_values": pixels})[0]
    raw = ort.InferenceSession(str(models.installed_dir("test-tiny+pairs-1") / "image.onnx")).run(
        None, {"pixel_values": pixels}
    )[0]
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(raw, project(raw_parent, matrix), atol=1e-5)


def test_a_version_of_a_version_stays_one_matmul_deep(models) -> None:
    parent_dir, parent = models.resolve("test-tiny")
    first, second = _near_identity(parent.embed_dim, 2), _near_identity(parent.embed_dim, 3)
    one = build_adapted(parent_dir, parent, "test-tiny+pairs-1", first, models.installed_dir("test-tiny+pairs-1"))
    two = build_adapted(
        models.installed_dir("test-tiny+pairs-1"),
        one,
        "test-tiny+pairs-2",
        second,
        models.installed_dir("test-tiny+pairs-2"),
    )
    assert two.source["parent"] == "test-tiny+pairs-1" and two.source["base"] == "test-tiny"
    graph = onnx.load(str(models.installed_dir("test-tiny+pairs-2") / "image.onnx")).graph
    assert sum(node.op_type == "MatMul" and ADAPTER_MATRIX in node.input for node in graph.node) == 1
    image = Image.new("RGB", (80, 80), (200, 40, 90))
    base = OnnxEmbedder(parent_dir, parent).embed_images([image])
    twice = OnnxEmbedder(models.installed_dir("test-tiny+pairs-2"), two).embed_images([image])
    np.testing.assert_allclose(twice, project(project(base, first), second), atol=1e-5)


def test_the_pointer_decides_what_a_base_name_means(models) -> None:
    parent_dir, parent = models.resolve("test-tiny")
    version = build_adapted(
        parent_dir,
        parent,
        "test-tiny+pairs-1",
        _near_identity(parent.embed_dim, 4),
        models.installed_dir("test-tiny+pairs-1"),
    )
    assert models.active_version("test-tiny") is None
    models.pointer_path("test-tiny").write_text(json.dumps({"base": "test-tiny", "active": "test-tiny+pairs-1"}))
    assert models.resolve("test-tiny")[1].model_id == version.model_id
    assert open_embedder("test-tiny", store=models).manifest.model_id == version.model_id
    assert models.resolve("test-tiny+pairs-1")[1].model_id == version.model_id  # a version by name
    assert models.resolve("test-tiny", follow_active=False)[1].model_id == parent.model_id
    models.pointer_path("test-tiny").write_text(json.dumps({"base": "test-tiny", "active": "test-tiny+pairs-9"}))
    with pytest.raises(ModelUnavailable, match=r"test-tiny\.active"):
        models.resolve("test-tiny")

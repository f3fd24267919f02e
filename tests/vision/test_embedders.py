"""Embedders: ONNX matches open_clip, int8 stays close, vectors are unit length, torch stays out of serving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vision.decode import DecodeLimits, decode_image
from vision.embedder import open_embedder
from vision.manifest import IMAGE_INT8_ONNX, IMAGE_ONNX, TEXT_INT8_ONNX, TEXT_ONNX, ModelManifest, sha256_file
from vision.model_store import ModelStore
from vision.pipeline import load_pixels

TEXTS = ["gold hoop earring with red stone", "a ceramic coffee mug", "white leather sneakers", "", "lamp " * 90]


@pytest.fixture(scope="module")
def backends(tiny):
    return {name: open_embedder("test-tiny", name) for name in ("torch", "onnx", "onnx-int8")}


@pytest.fixture(scope="module")
def photos(real_photos):
    return [decode_image(p, draft_size=512) for p in real_photos[:24]]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_manifest_records_files_with_checksums(tiny):
    directory, manifest = tiny
    expected = {IMAGE_ONNX, TEXT_ONNX, IMAGE_INT8_ONNX, TEXT_INT8_ONNX, "bpe_simple_vocab_16e6.txt.gz"}
    assert expected <= set(manifest.files)
    for name, digest in manifest.files.items():
        assert sha256_file(directory / name) == digest
    assert manifest.embed_dim == 64 and manifest.preprocess.image_size == (64, 64)
    assert manifest.model_id.startswith("test-tiny@")
    assert ModelManifest.load(directory) == manifest


def test_vectors_are_unit_float32(backends, photos):
    for name, embedder in backends.items():
        images = embedder.embed_images(photos[:5])
        texts = embedder.embed_texts(TEXTS)
        for vectors, rows in ((images, 5), (texts, len(TEXTS))):
            assert vectors.dtype == np.float32 and vectors.shape == (rows, 64), name
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_onnx_matches_torch_per_image_and_per_text(backends, photos):
    torch_images = backends["torch"].embed_images(photos)
    onnx_images = backends["onnx"].embed_images(photos)
    image_cos = _cosines(torch_images, onnx_images)
    text_cos = _cosines(backends["torch"].embed_texts(TEXTS), backends["onnx"].embed_texts(TEXTS))
    print(f"onnx vs torch cosine: images min {image_cos.min():.7f}, texts min {text_cos.min():.7f}")
    assert image_cos.min() >= 0.9999
    assert text_cos.min() >= 0.9999
    # Not a constant model: different photos get clearly different vectors.
    assert _cosines(onnx_images[:-1], onnx_images[1:]).min() < 0.999


def test_int8_stays_close_to_torch(backends, photos):
    image_cos = _cosines(backends["torch"].embed_images(photos), backends["onnx-int8"].embed_images(photos))
    text_cos = _cosines(backends["torch"].embed_texts(TEXTS), backends["onnx-int8"].embed_texts(TEXTS))
    print(f"onnx-int8 vs torch cosine: images min {image_cos.min():.5f}, texts min {text_cos.min():.5f}")
    assert image_cos.min() >= 0.99
    assert text_cos.min() >= 0.99


def test_draft_fast_path_keeps_embeddings_of_real_photos(backends, real_photos):
    embedder = backends["onnx"]
    config = embedder.manifest.preprocess
    limits = DecodeLimits(max_pixels=100_000_000)  # the exact path must decode the 93 MP original too
    chosen = real_photos[:40]
    exact = embedder.embed_pixels(np.stack([load_pixels(p, config, limits, fast=False) for p in chosen]))
    fast = embedder.embed_pixels(np.stack([load_pixels(p, config, limits, fast=True) for p in chosen]))
    cos = _cosines(exact, fast)
    print(f"draft vs exact cosine over {len(chosen)} real photos: min {cos.min():.5f}, mean {cos.mean():.5f}")
    assert cos.min() >= 0.995


def test_serving_path_never_imports_torch(tiny, real_photos, vitrine_home):
    script = (
        "import sys, json\n"
        "import cli.main\n"
        "from vision.embedder import open_embedder\n"
        "from vision.pipeline import embed_sources\n"
        "e = open_embedder('test-tiny', 'onnx-int8')\n"
        f"r = list(embed_sources(e, [{str(real_photos[5])!r}]))\n"
        "t = e.embed_texts(['a red mug'])\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'open_clip': 'open_clip' in sys.modules,"
        " 'ok': r[0].vector is not None and t.shape == (1, 64)}))\n"
    )
    env = {"VITRINE_HOME": str(vitrine_home), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == {"torch": False, "open_clip": False, "ok": True}


def test_export_from_a_local_checkpoint_reproduces_the_model(tmp_path: Path, store, backends, photos):
    checkpoint = tmp_path / "tiny.pt"
    torch.save(backends["torch"].model.state_dict(), checkpoint)
    from vision.export import export_model

    spec = ModelManifest.load(store.catalogue_dir / "test-tiny")
    spec.name = "tiny-from-checkpoint"
    manifest = export_model(spec, store.installed_dir(spec.name), weights=str(checkpoint), quantize=False)
    assert manifest.source["kind"] == "checkpoint"
    assert IMAGE_INT8_ONNX not in manifest.files
    reloaded = open_embedder("tiny-from-checkpoint", "onnx", store)
    np.testing.assert_allclose(reloaded.embed_images(photos[:4]), backends["onnx"].embed_images(photos[:4]), atol=1e-5)
    with pytest.raises(Exception, match="lacks"):
        open_embedder("tiny-from-checkpoint", "onnx-int8", store).embed_images(photos[:1])


def test_unknown_and_uninstalled_models_explain_themselves(tmp_path: Path):
    from vision.errors import ModelUnavailable

    store = ModelStore(tmp_path)
    with pytest.raises(ModelUnavailable, match=r"Unknown model 'nope'.*vitrine models list"):
        store.resolve("nope")
    with pytest.raises(ModelUnavailable, match=r"not installed.*vitrine models pull vit-b-32-laion2b"):
        store.resolve("vit-b-32-laion2b")


def test_export_from_a_hand_placed_hub_folder_takes_its_preprocessing(tmp_path: Path, store, backends, photos):
    """How `models pull` output is placed by hand offline: an hf-hub style folder (config + weights)."""
    from vision.export import export_model
    from vision.model_store import OPEN_CLIP_CONFIGS_DIR

    folder = tmp_path / "hub-folder"
    folder.mkdir()
    torch.save(backends["torch"].model.state_dict(), folder / "open_clip_pytorch_model.bin")
    model_cfg = json.loads((OPEN_CLIP_CONFIGS_DIR / "test-tiny.json").read_text())
    preprocess_cfg = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "resize_mode": "squash"}
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg})
    )

    spec = ModelManifest.load(store.catalogue_dir / "test-tiny")
    spec.name = "tiny-from-folder"
    manifest = export_model(spec, store.installed_dir(spec.name), weights=str(folder), quantize=False)
    assert manifest.preprocess.mean == (0.5, 0.5, 0.5) and manifest.preprocess.resize_mode == "squash"
    served = open_embedder("tiny-from-folder", "onnx", store)
    reference = open_embedder("tiny-from-folder", "torch", store)
    assert _cosines(served.embed_images(photos[:6]), reference.embed_images(photos[:6])).min() >= 0.9999
    # Same weights as test-tiny, other preprocessing: close to, but not the same as, test-tiny's vectors.
    other = _cosines(served.embed_images(photos[:6]), backends["onnx"].embed_images(photos[:6]))
    assert other.min() < 0.99999

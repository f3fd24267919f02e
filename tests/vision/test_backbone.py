"""The default model's pretrained backbone: found in its installed package, checked by sha256, mapped whole."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from shared_data import GROCERY, require

from vision.backbone import BackboneSpec, backbone_file, checked_backbone_file, map_by_position
from vision.errors import ModelUnavailable
from vision.manifest import sha256_file
from vision.model_store import DEFAULT_MODEL, ModelStore

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def spec() -> BackboneSpec:
    manifest = ModelStore().catalogue()[DEFAULT_MODEL]
    return BackboneSpec.from_json(manifest.source["backbone"])


def test_the_default_model_names_an_installed_backbone_with_its_checksum(spec: BackboneSpec) -> None:
    path = checked_backbone_file(spec)
    assert path.name == "efficientnet-lite2-9656183e.pth"
    assert sha256_file(path) == spec.sha256


def test_a_backbone_file_that_does_not_match_its_checksum_is_refused(spec: BackboneSpec) -> None:
    tampered = dataclasses.replace(spec, sha256="0" * 64)
    with pytest.raises(ModelUnavailable, match=r"do not match the manifest.*pip install --force-reinstall"):
        checked_backbone_file(tampered)


def test_a_missing_backbone_package_says_what_to_install(spec: BackboneSpec) -> None:
    absent = dataclasses.replace(spec, package="vitrine_no_such_backbone", distribution="vitrine-no-such==1.0")
    with pytest.raises(ModelUnavailable, match=r"pip install vitrine-no-such==1\.0"):
        backbone_file(absent)


def test_mapping_by_position_refuses_tensors_that_do_not_fit() -> None:
    source = {"a.weight": torch.zeros(3, 4), "a.num_batches_tracked": torch.tensor(1), "fc.weight": torch.zeros(2)}
    target = {"x.weight": torch.zeros(3, 4)}
    assert map_by_position(source, target, skip_prefixes=("fc.",)).keys() == {"x.weight"}
    with pytest.raises(ModelUnavailable, match="does not fit"):
        map_by_position(source, {"x.weight": torch.zeros(4, 3)}, skip_prefixes=("fc.",))
    with pytest.raises(ModelUnavailable, match="2 tensors where the model expects 1"):
        map_by_position(source, target)


def test_the_mapped_backbone_recognises_bananas_as_imagenet_does(spec: BackboneSpec) -> None:
    """All 386 tensors in the right places: the whole ImageNet classifier, head included, names real phone
    photos of bananas "banana" (class 954). A tensor in the wrong place would not."""
    timm = pytest.importorskip("timm")
    from PIL import Image

    from vision.backbone import load_backbone_state
    from vision.preprocess import PreprocessConfig, preprocess_batch

    photos = sorted((require(GROCERY) / "val" / "Fruit" / "Banana").rglob("*.jpg"))[:6]
    assert photos, "no banana photos in the grocery validation split"
    classifier = timm.create_model("tf_efficientnet_lite2", pretrained=False).eval()
    classifier.load_state_dict(map_by_position(load_backbone_state(spec), classifier.state_dict()), strict=False)
    config = PreprocessConfig((260, 260), mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
    pixels = torch.from_numpy(preprocess_batch([Image.open(p).convert("RGB") for p in photos], config))
    with torch.no_grad():
        top5 = classifier(pixels).topk(5, dim=1).indices.numpy()
    assert np.mean([954 in row for row in top5]) >= 0.8, top5


def test_the_onnx_export_of_the_default_model_matches_torch(real_photos: list[Path]) -> None:
    from PIL import Image

    from vision.embedder import open_embedder

    onnx = open_embedder(DEFAULT_MODEL, "onnx")
    reference = open_embedder(DEFAULT_MODEL, "torch")
    images = [Image.open(p).convert("RGB") for p in real_photos[:4]]
    cosines = (onnx.embed_images(images) * reference.embed_images(images)).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    texts = ["red mug", "golden delicious apple", "running shoes"]
    assert (onnx.embed_texts(texts) * reference.embed_texts(texts)).sum(axis=1).min() > 0.999
    assert onnx.manifest.embed_dim == 512 and onnx.manifest.preprocess.image_size == (260, 260)

"""Locked-image tuning of the default model runs end to end: a few steps on a few items, checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from safetensors.torch import load_file  # noqa: E402

from training.command import train_lite2  # noqa: E402
from training.lit import CHECKPOINT_FILE, LitSettings, build_model  # noqa: E402
from training.sources import demo_items  # noqa: E402
from vision.manifest import ModelManifest  # noqa: E402
from vision.model_store import ModelStore  # noqa: E402
from vision.open_clip_loader import load_open_clip  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lite2")
    settings = LitSettings(demo_products=12, views=1, steps=4, batch=8, real_share=0.0, warmup=1, lr=1e-2)
    train_lite2(out, settings, flipkart=None, grocery=None, cache=out / "cache", log=lambda _: None)
    return out


def _manifest() -> ModelManifest:
    return ModelStore().catalogue()["vitrine-lite2"]


def test_training_saves_only_what_it_trained(trained: Path) -> None:
    state = load_file(str(trained / CHECKPOINT_FILE))
    assert any(k.startswith("visual.trunk.blocks.6.") for k in state)
    assert any(k.startswith("visual.head.proj") for k in state)
    assert "token_embedding.weight" in state
    # The locked stages come from the backbone package, never from the project's checkpoint.
    assert not any(k.startswith(("visual.trunk.blocks.0.", "visual.trunk.conv_stem")) for k in state)
    report = json.loads((trained / "training.json").read_text())
    assert report["steps_done"] == 4 and report["items"]["demo"] == 12
    assert all(np.isfinite(image) and np.isfinite(text) for _, image, text in report["losses"])


def test_the_checkpoint_loads_with_the_backbone_and_changed_the_trained_part(trained: Path) -> None:
    manifest = _manifest()
    before = build_model(manifest, demo_checkpoint=None).state_dict()
    model, _, _ = load_open_clip(manifest, str(trained / CHECKPOINT_FILE))
    after = model.state_dict()
    # Locked: identical to the package's weights. Trained: moved away from where training started.
    locked, trained = "visual.trunk.blocks.2.0.conv_pw.weight", "visual.trunk.blocks.6.0.conv_pwl.weight"
    assert torch.equal(before[locked], after[locked])
    moved = after[trained].float() - before[trained]
    assert moved.abs().max() > 1e-4
    with torch.no_grad():
        vectors = model.encode_image(torch.zeros(2, 3, 260, 260))
    assert vectors.shape == (2, 512) and torch.isfinite(vectors).all()


def test_the_features_cache_is_reused_by_the_next_run(trained: Path) -> None:
    cached = list((trained / "cache").glob("lite2-frozen-*.npz"))
    assert len(cached) == 1
    with np.load(cached[0]) as data:
        assert data["clean"].shape == (12, 208, 9, 9) and data["views"].shape == (12, 1, 208, 9, 9)
        assert np.abs(data["clean"].astype(np.float32) - data["views"][:, 0].astype(np.float32)).max() > 0


def test_demo_captions_fit_every_product_that_satisfies_them() -> None:
    items = demo_items(30, 1001)
    for item in items:
        for _, key in item.captions:
            assert key in item.keys  # its own captions always fit
    kinds = {key for item in items for key in item.keys if key.count("=") == 1 and "kind=" in key}
    # A bare kind ("mugs") fits every product of that kind, not only the one it was drawn for.
    shared = [k for k in kinds if sum(k in item.keys for item in items) > 1]
    assert shared

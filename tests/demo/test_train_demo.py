"""Training the demo model: caption claims, the multi-positive loss, and a few real training steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from safetensors.torch import load_file  # noqa: E402

from demo.products import product_spec, product_specs  # noqa: E402
from demo.train import (  # noqa: E402
    ARCHITECTURE,
    CHECKPOINT_FILE,
    TrainSettings,
    _batch_products,
    _clip_loss,
    _multi_positive_loss,
    caption,
    train_demo,
)
from vision.open_clip_loader import register_project_configs  # noqa: E402


def test_every_caption_fits_its_own_product_and_no_product_of_another_kind() -> None:
    specs = product_specs(1001, 300)
    rng = np.random.default_rng(3)
    kinds_seen = set()
    for spec in specs:
        for _ in range(5):
            written = caption(spec, rng)
            assert written.fits(spec), (written, spec.title)
            others = [s for s in specs if s.type != spec.type]
            assert not any(written.fits(other) for other in others), written
            kinds_seen.add(spec.type)
    assert len(kinds_seen) == 14


def test_a_phrase_fits_every_product_it_describes_and_a_title_only_its_twins() -> None:
    specs = product_specs(1001, 600)
    rng = np.random.default_rng(11)
    bare = titles = narrower = 0
    for spec in specs[:200]:
        written = caption(spec, rng)
        fitting = [s for s in specs if written.fits(s)]
        if written.title is not None:
            titles += 1
            assert all(s.title.lower() == written.text for s in fitting)
        elif (written.colour, written.material, written.pattern, written.shape, written.accent) == (None,) * 5:
            bare += 1  # "mugs for sale": every mug fits
            assert len(fitting) == sum(s.type == spec.type for s in specs)
        else:  # the kind, narrowed by the claims
            assert all(s.type == spec.type for s in fitting)
            narrower += len(fitting) < sum(s.type == spec.type for s in specs)
    assert titles > 0 and bare > 0 and narrower > 0


def test_multi_positive_loss_is_the_clip_loss_when_each_caption_fits_one_image() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=-1)
    texts = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=-1)
    scale = torch.tensor(10.0)
    same = _multi_positive_loss(images, texts, torch.eye(6), scale)
    assert torch.allclose(same, _clip_loss(texts, images, scale), atol=1e-5)


def test_multi_positive_loss_pulls_a_caption_between_all_the_images_it_fits() -> None:
    # Three products; caption 0 ("red mug") fits products 0 and 1, the others fit their own product only.
    images = torch.eye(3)
    between = torch.tensor([[0.7071, 0.7071, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    on_first = torch.eye(3)
    scale = torch.tensor(10.0)
    fits = torch.eye(3)
    fits[0, 1] = 1.0
    # With the claims, the caption is best placed between the two products it fits ...
    assert _multi_positive_loss(images, between, fits, scale) < _multi_positive_loss(images, on_first, fits, scale)
    # ... while the one-hot loss would push it onto one of them.
    one_hot = torch.eye(3)
    assert _multi_positive_loss(images, on_first, one_hot, scale) < _multi_positive_loss(
        images, between, one_hot, scale
    )


def test_batches_hold_a_few_kinds_drawn_by_weight() -> None:
    specs = product_specs(1001, 700)
    kinds = sorted({s.type for s in specs})
    by_type = [np.flatnonzero([s.type == kind for s in specs]) for kind in kinds]
    settings = TrainSettings(batch=48, types_per_batch=3)
    rng = np.random.default_rng(0)
    weights = np.ones(len(kinds))
    weights[3:] = 1e-9  # all but the first three kinds are (nearly) never drawn
    for _ in range(20):
        chosen = _batch_products(by_type, settings, rng, weights)
        assert len(set(chosen.tolist())) == 48
        assert {specs[i].type for i in chosen} == set(kinds[:3])
    uniform = {specs[i].type for _ in range(20) for i in _batch_products(by_type, settings, rng, np.ones(len(kinds)))}
    assert len(uniform) > 3


def test_a_few_training_steps_write_a_checkpoint_that_open_clip_loads(tmp_path: Path) -> None:
    settings = TrainSettings(products=28, photos_per_product=1, batch=8, steps=3, warmup=1, workers=1)
    report = train_demo(tmp_path / "out", settings, log=lambda _: None)
    assert report.steps_done == 3
    assert report.precision in ("bf16 autocast", "fp32")
    register_project_configs()
    model = open_clip.create_model(ARCHITECTURE)
    state = load_file(str(tmp_path / "out" / CHECKPOINT_FILE))
    assert all(t.dtype == torch.float16 for t in state.values() if t.is_floating_point())
    model.load_state_dict(state, strict=True)
    trained = json.loads((tmp_path / "out" / "training.json").read_text())
    assert trained["steps_done"] == 3 and np.isfinite(trained["final_loss"])
    assert product_spec(1001, 0).type  # the training seed's products exist

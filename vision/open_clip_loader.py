"""Build an open_clip model from a manifest's source. Imports torch: export, parity and training only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import open_clip
import torch

from vision.backbone import BackboneSpec, load_backbone_state, map_by_position
from vision.errors import ModelUnavailable
from vision.manifest import ModelManifest
from vision.model_store import OPEN_CLIP_CONFIGS_DIR
from vision.preprocess import PreprocessConfig

_registered = False


def register_project_configs() -> None:
    """Make the project's custom architectures (`test-tiny`, ...) known to open_clip."""
    global _registered
    if not _registered:
        open_clip.add_model_config(OPEN_CLIP_CONFIGS_DIR)
        _registered = True


def load_open_clip(spec: ModelManifest, weights: str | None = None) -> tuple[torch.nn.Module, Any, Any]:
    """(model in eval mode, open_clip's own inference transform, open_clip's tokenizer).

    `weights` overrides the source with a local checkpoint file or an hf-hub style folder
    (open_clip_config.json plus weights), which is how files placed by hand are used.
    """
    register_project_configs()
    source = spec.source
    kind = source.get("kind")
    name, pretrained = spec.architecture, None
    if kind == "checkpoint" and "backbone" in source:
        checkpoint = Path(weights) if weights is not None else Path(source["path"])
        return _load_with_backbone(spec, BackboneSpec.from_json(source["backbone"]), checkpoint)
    if weights is not None:
        path = Path(weights)
        if path.is_dir():
            name = f"local-dir:{path.resolve()}"
        elif path.is_file():
            pretrained = str(path.resolve())
        else:
            raise ModelUnavailable(f"Weights {weights!r} for model {spec.name!r} do not exist.")
    elif kind == "random":
        torch.manual_seed(int(source.get("seed", 0)))
    elif kind == "open_clip":
        pretrained = source["pretrained"]
    elif kind == "checkpoint":
        pretrained = source["path"]
    elif kind == "hf-hub":
        name = f"hf-hub:{source['id']}"
    model, _, transform = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    return model, transform, tokenizer


def _load_with_backbone(
    spec: ModelManifest, backbone: BackboneSpec, checkpoint: Path
) -> tuple[torch.nn.Module, Any, Any]:
    """A model whose checkpoint holds only what the project trained (projection, text tower): the pretrained
    backbone comes from its installed package (sha256-checked) and is placed into `backbone.into` first.

    The manifest's normalisation is forced on open_clip, since the backbone was trained with its own
    (the EfficientNet-Lite recipe: (pixel - 127) / 128), not CLIP's.
    """
    pre = spec.preprocess
    model, _, transform = open_clip.create_model_and_transforms(
        spec.architecture,
        pretrained=None,
        image_mean=pre.mean,
        image_std=pre.std,
        image_interpolation=pre.interpolation,
        image_resize_mode=pre.resize_mode,
    )
    place_backbone(model, backbone)
    if not checkpoint.is_file():
        raise ModelUnavailable(f"Model {spec.name!r}: its checkpoint {checkpoint} does not exist.")
    load_trained_part(model, checkpoint, backbone.into)
    model.eval()
    return model, transform, open_clip.get_tokenizer(spec.architecture)


def place_backbone(model: torch.nn.Module, backbone: BackboneSpec) -> None:
    """Load the checked backbone weights into `model`'s `backbone.into` module, every tensor accounted for."""
    trunk = model.get_submodule(backbone.into)
    mapped = map_by_position(load_backbone_state(backbone), trunk.state_dict(), backbone.skip_prefixes)
    missing, unexpected = trunk.load_state_dict(mapped, strict=False)
    left = [k for k in missing if not k.endswith("num_batches_tracked")]
    if left or unexpected:
        raise ModelUnavailable(f"The backbone did not fit the model: missing {left[:3]}, unexpected {unexpected[:3]}")


def load_trained_part(model: torch.nn.Module, checkpoint: Path, backbone_prefix: str) -> None:
    """Load a checkpoint that leaves out the backbone: every other tensor of the model must be in it."""
    from safetensors.torch import load_file

    missing, unexpected = model.load_state_dict(load_file(str(checkpoint)), strict=False)
    left = [k for k in missing if not k.startswith(backbone_prefix + ".")]
    if left or unexpected:
        raise ModelUnavailable(
            f"The checkpoint {checkpoint} does not fit the model: missing {left[:3]}, unexpected {unexpected[:3]}"
        )


def preprocess_config_of(model: torch.nn.Module) -> PreprocessConfig:
    """The inference preprocessing open_clip settled on for this model and these weights."""
    cfg = model.visual.preprocess_cfg
    size = cfg["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    return PreprocessConfig(
        image_size=(int(size[0]), int(size[1])),
        mean=tuple(float(m) for m in cfg["mean"]),
        std=tuple(float(s) for s in cfg["std"]),
        resize_mode=cfg.get("resize_mode", "shortest"),
        interpolation="bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic",
        fill_color=int(cfg.get("fill_color", 0)),
    )

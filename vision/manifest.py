"""Model manifests: what a model is, where it came from, how to feed it, and which files it owns."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vision.preprocess import PreprocessConfig

MANIFEST_NAME = "manifest.json"
IMAGE_ONNX = "image.onnx"
TEXT_ONNX = "text.onnx"
IMAGE_INT8_ONNX = "image.int8.onnx"
TEXT_INT8_ONNX = "text.int8.onnx"
CHECKPOINT = "checkpoint.pt"


@dataclass
class ModelManifest:
    """One model, as the catalogue describes it and as an export records it.

    `source` is one of: {"kind": "open_clip", "pretrained": TAG}, {"kind": "hf-hub", "id": REPO},
    {"kind": "checkpoint", "path": FILE}, {"kind": "random", "seed": N}, or {"kind": "adapted", "parent": NAME,
    "matrix": "adapter.npy", ...} for a version learned by `vitrine learn` (`vision.adapter`).
    `files` maps each exported file name to its sha256; empty until the model is exported.
    """

    name: str
    architecture: str
    source: dict[str, Any]
    embed_dim: int
    preprocess: PreprocessConfig
    tokenizer: dict[str, Any] = field(default_factory=lambda: {"kind": "clip-bpe", "context_length": 77})
    description: str = ""
    files: dict[str, str] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """Identity recorded with every vector: the name plus a digest of the image tower weights."""
        digest = self.files.get(IMAGE_ONNX, "")[:12]
        return f"{self.name}@{digest}" if digest else self.name

    @property
    def source_label(self) -> str:
        kind = self.source.get("kind")
        if kind == "open_clip":
            return f"open_clip {self.architecture} / {self.source['pretrained']}"
        if kind == "hf-hub":
            return f"hf-hub:{self.source['id']}"
        if kind == "random":
            return f"{self.architecture} with random weights (seed {self.source.get('seed', 0)})"
        if kind == "adapted":  # a version learned by `vitrine learn` (vision.adapter)
            return f"{self.source.get('parent', '?')} with an adapter learned from operators' pairs"
        return f"{self.architecture} from {self.source.get('path', '?')}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["preprocess"]["image_size"] = list(self.preprocess.image_size)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelManifest:
        pre = dict(data["preprocess"])
        pre["image_size"] = tuple(pre["image_size"])
        pre["mean"] = tuple(pre["mean"])
        pre["std"] = tuple(pre["std"])
        return cls(
            name=data["name"],
            architecture=data["architecture"],
            source=dict(data["source"]),
            embed_dim=int(data["embed_dim"]),
            preprocess=PreprocessConfig(**pre),
            tokenizer=dict(data.get("tokenizer", {})),
            description=data.get("description", ""),
            files=dict(data.get("files", {})),
        )

    @classmethod
    def load(cls, directory: Path) -> ModelManifest:
        return cls.from_json(json.loads((directory / MANIFEST_NAME).read_text()))

    def save(self, directory: Path) -> None:
        """Write atomically, so a reader never sees half a manifest."""
        directory.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self.to_json(), indent=2) + "\n"
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, directory / MANIFEST_NAME)


def install_folder(work: Path, out_dir: Path) -> None:
    """Replace `out_dir` by the finished `work` folder (a sibling): a model folder is written aside and moved
    into place whole, so an interrupted export never leaves one that looks installed."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    work.rename(out_dir)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

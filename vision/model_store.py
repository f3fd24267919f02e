"""Where models live: the committed catalogue in `models/` and exported files under `VITRINE_HOME`.

A name given to `--model` resolves, in order, to a folder holding a manifest, an installed
(exported) model, or a catalogue entry. Catalogue entries with random weights (`test-tiny`)
or with a checkpoint committed next to their manifest (`demo`) are exported on first use, so
tests and offline machines never need the network. A committed checkpoint is named by a path
relative to its manifest; its digest is recorded with the export, so a retrained checkpoint
is exported again rather than served stale.

A learned version (`vitrine learn`) is a complete model folder `<base>+pairs-<n>` beside the others.
Which version a base name means is the "active version" pointer `<base>.active` (JSON, replaced
atomically by `learning`): `resolve(base)` follows it, so every command that opens the base name
gets the active version; a version named in full (`demo+pairs-1`) resolves to itself.
"""

from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from pathlib import Path

from vision.errors import ModelUnavailable
from vision.manifest import IMAGE_ONNX, MANIFEST_NAME, ModelManifest, sha256_file

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "models"
OPEN_CLIP_CONFIGS_DIR = CATALOGUE_DIR / "open_clip_configs"
# The default works offline: EfficientNet-Lite2 from an installed package plus the project's trained part.
DEFAULT_MODEL = "vitrine-lite2"
# What `vitrine models pull` fetches when no name is given: a real CLIP, where the model hub is reachable.
PULL_DEFAULT = "vit-b-32-laion2b"
VERSION_MARK = "+pairs-"  # a learned version's name: <base>+pairs-<n>
ACTIVE_SUFFIX = ".active"  # the active-version pointer of a base name: <base>.active

_export_lock = threading.Lock()


def chosen_model(name: str | None = None) -> str:
    """The model a command runs: the one named, else `VITRINE_MODEL`, else the default."""
    return name or os.environ.get("VITRINE_MODEL") or DEFAULT_MODEL


def vitrine_home() -> Path:
    """The one data directory: `VITRINE_HOME`, default `./var`."""
    return Path(os.environ.get("VITRINE_HOME", "var")).resolve()


class ModelStore:
    """Finds, lists and installs models; the only place that knows the folder layout."""

    def __init__(self, home: Path | None = None, catalogue_dir: Path = CATALOGUE_DIR) -> None:
        self.home = (home or vitrine_home()).resolve()
        self.catalogue_dir = catalogue_dir

    @property
    def installed_root(self) -> Path:
        return self.home / "models"

    def installed_dir(self, name: str) -> Path:
        return self.installed_root / name

    def pointer_path(self, base: str) -> Path:
        return self.installed_root / f"{base}{ACTIVE_SUFFIX}"

    def active_version(self, name: str) -> str | None:
        """The version `name` currently means when it has an active-version pointer, else None."""
        pointer = self.pointer_path(name)
        if os.sep in name or not pointer.is_file():
            return None
        try:
            active = json.loads(pointer.read_text()).get("active")
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"The active-version pointer {pointer} is unreadable: {exc}") from None
        return str(active) if active else None

    def catalogue(self) -> dict[str, ModelManifest]:
        entries = {}
        for manifest_path in sorted(self.catalogue_dir.glob(f"*/{MANIFEST_NAME}")):
            manifest = ModelManifest.load(manifest_path.parent)
            source = manifest.source
            if source.get("kind") == "checkpoint" and not Path(source["path"]).is_absolute():
                checkpoint = (manifest_path.parent / source["path"]).resolve()
                source["path"] = str(checkpoint)
                if checkpoint.is_file():
                    source["sha256"] = _file_digest(str(checkpoint), *_stamp(checkpoint))
            entries[manifest.name] = manifest
        return entries

    def installed(self) -> dict[str, ModelManifest]:
        entries = {}
        for manifest_path in sorted(self.installed_root.glob(f"*/{MANIFEST_NAME}")):
            manifest = ModelManifest.load(manifest_path.parent)
            if IMAGE_ONNX in manifest.files:
                entries[manifest.name] = manifest
        return entries

    def resolve(self, name: str, auto_export: bool = True, follow_active: bool = True) -> tuple[Path, ModelManifest]:
        """The folder and manifest of an exported model, exporting random-weight models if needed.

        A name with an active-version pointer resolves to the version it points at (unless not `follow_active`)."""
        active = self.active_version(name) if follow_active else None
        if active is not None and active != name:
            directory = self.installed_dir(active)
            if not (directory / MANIFEST_NAME).is_file() or not (directory / IMAGE_ONNX).is_file():
                raise ModelUnavailable(
                    f"Model {name!r} points at version {active!r}, which is missing from {self.installed_root}; "
                    f"delete {self.pointer_path(name)} to use {name!r} itself."
                )
            return directory, ModelManifest.load(directory)
        as_path = Path(name)
        if (as_path / MANIFEST_NAME).is_file():
            return as_path.resolve(), ModelManifest.load(as_path)
        directory = self.installed_dir(name)
        spec = self.catalogue().get(name)
        if (directory / MANIFEST_NAME).is_file() and (directory / IMAGE_ONNX).is_file():
            installed = ModelManifest.load(directory)
            if not _stale(installed, spec):
                return directory, installed
        if spec is None:
            known = ", ".join(sorted({*self.catalogue(), *self.installed()})) or "none"
            raise ModelUnavailable(f"Unknown model {name!r}. Known models: {known}. See `vitrine models list`.")
        if _exports_offline(spec) and auto_export:
            with _export_lock:
                ready = (directory / IMAGE_ONNX).is_file() and (directory / MANIFEST_NAME).is_file()
                if not ready or _stale(ModelManifest.load(directory), spec):
                    export_into_store(self, spec)
            return directory, ModelManifest.load(directory)
        raise ModelUnavailable(
            f"Model {name!r} ({spec.source_label}) is not installed in {self.installed_root}. "
            f"Run `vitrine models pull {name}` (needs the network), or place its weights by hand "
            f"and run `vitrine models export {name} --weights FILE`."
        )


def _exports_offline(spec: ModelManifest) -> bool:
    """Random weights, or a checkpoint present on disk: exportable without the network."""
    kind = spec.source.get("kind")
    return kind == "random" or (kind == "checkpoint" and Path(spec.source.get("path", "")).is_file())


def _stale(installed: ModelManifest, spec: ModelManifest | None) -> bool:
    """An export of a committed checkpoint whose file has changed since (e.g. the model was retrained)."""
    if spec is None or "sha256" not in spec.source:
        return False
    return installed.source.get("sha256") != spec.source["sha256"]


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=16)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of a checkpoint, computed once per file version (the catalogue is read on every resolve)."""
    return sha256_file(Path(path))


def export_into_store(store: ModelStore, spec: ModelManifest, weights: str | None = None) -> ModelManifest:
    """Export `spec` (optionally from a local weights file or folder) into the store. Needs torch."""
    try:
        from vision.export import export_model
    except ImportError as exc:
        raise ModelUnavailable(
            f"Exporting model {spec.name!r} needs torch and open_clip, which are not installed "
            f"({exc}). Install them with `pip install -e '.[torch]'`."
        ) from None
    return export_model(spec, store.installed_dir(spec.name), weights=weights)

"""Save and load a `VectorIndex` atomically: versioned folders and a CURRENT pointer.

    INDEX_DIR/CURRENT            one line: the name of the complete version to load
    INDEX_DIR/v<ns>/manifest.json model id, dimension, index kind, count, sha256 of every file
    INDEX_DIR/v<ns>/*.npy, engine.faiss, dictionaries.json

A save writes a new version folder (each file fsynced), renames it into place, then replaces
CURRENT atomically (write, fsync, rename, fsync the folder). A crash at any moment leaves
CURRENT naming the previous complete version; leftovers are swept by the next save.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.durable import flush_handle, fsync_path, write_atomically
from index.errors import IndexCorrupted, IndexMismatch, IndexNotFound
from index.vector_index import IndexState, VectorIndex

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
ENGINE_FILE = "engine.faiss"
DICTIONARIES = "dictionaries.json"
VECTORS_FILE = "vectors.npy"


def save_index(index: VectorIndex, directory: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write `index` as a new version of `directory` and make it current. Returns the version folder.

    `extra` is stored in the manifest for the caller (e.g. the vector-store segment the index covers).
    """
    directory, version, partial = new_version(directory)
    with index.snapshot() as state:
        for name, array in state.arrays.items():
            with (partial / f"{name}.npy").open("wb") as handle:
                np.save(handle, array, allow_pickle=False)
                flush_handle(handle)
        _write_vectors(partial / VECTORS_FILE, state)
        _write_json(partial / DICTIONARIES, state.dictionaries)
        if state.engine is not None:
            faiss.write_index(state.engine, str(partial / ENGINE_FILE))
            fsync_path(partial / ENGINE_FILE)
        fields = {
            "model_id": state.model_id,
            "dim": state.dim,
            "index_type": state.spec.kind,
            "engine": state.spec.to_json(),
            "count": state.count,
            "rows": state.rows,
        }
    return publish_version(directory, version, partial, fields, extra)


def new_version(directory: Path) -> tuple[Path, str, Path]:
    """(directory, version name, partial folder to fill): the start of a save; `publish_version` ends it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    version = f"v{time.time_ns()}"
    partial = directory / f".{version}.partial"
    partial.mkdir()
    return directory, version, partial


def publish_version(
    directory: Path, version: str, partial: Path, fields: dict[str, Any], extra: dict[str, Any] | None = None
) -> Path:
    """Checksum the filled partial folder, rename it into place and make it current (the commit point)."""
    manifest = {
        "format_version": FORMAT_VERSION,
        **fields,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "extra": extra or {},
        "files": {p.name: _sha256(p) for p in sorted(partial.iterdir())},
    }
    _write_json(partial / MANIFEST, manifest)
    fsync_path(partial)
    final = directory / version
    os.rename(partial, final)
    fsync_path(directory)
    write_atomically(directory / CURRENT, (version + "\n").encode())
    _sweep(directory, keep=version)
    return final


def read_manifest(directory: Path) -> dict[str, Any]:
    version_dir = _current_version(Path(directory))
    try:
        return json.loads((version_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise IndexCorrupted(
            f"The index manifest in {version_dir} cannot be read ({exc}); rebuild the index."
        ) from None


def load_index(
    directory: Path,
    expected_model_id: str | None = None,
    expected_dim: int | None = None,
    verify: bool = True,
    vectors_path: Path | None = None,
) -> VectorIndex:
    """Load the current version, refusing another model's index and any file that fails its checksum.

    Saved vectors are memory-mapped; `vectors_path` sends vectors added later to a file, not memory.
    """
    version_dir = _current_version(Path(directory))
    manifest = read_manifest(directory)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorrupted(f"Index format {manifest.get('format_version')} is not supported; rebuild the index.")
    if expected_model_id is not None and manifest["model_id"] != expected_model_id:
        raise IndexMismatch(
            f"The index in {directory} holds vectors of model {manifest['model_id']!r}, not {expected_model_id!r}; "
            "rebuild it with `vitrine index rebuild` for this model."
        )
    if expected_dim is not None and manifest["dim"] != expected_dim:
        raise IndexMismatch(f"The index in {directory} has dimension {manifest['dim']}, expected {expected_dim}.")
    if verify:
        for name, digest in manifest["files"].items():
            path = version_dir / name
            if not path.is_file() or _sha256(path) != digest:
                raise IndexCorrupted(
                    f"Index file {path} is missing or corrupted (checksum mismatch); "
                    "rebuild it with `vitrine index rebuild`."
                )
    try:
        # Vectors are memory-mapped: a loaded index touches (and keeps resident) only the rows it reads.
        arrays = {p.stem: np.load(p, allow_pickle=False) for p in version_dir.glob("*.npy") if p.name != VECTORS_FILE}
        # Vectors are memory-mapped: a loaded index touches (and keeps resident) only the rows it reads.
        vectors = np.load(version_dir / VECTORS_FILE, allow_pickle=False, mmap_mode="r")
        dictionaries = json.loads((version_dir / DICTIONARIES).read_text())
        engine_path = version_dir / ENGINE_FILE
        engine = faiss.read_index(str(engine_path)) if engine_path.is_file() else None
        state = IndexState.from_manifest(manifest, vectors, arrays, dictionaries, engine, vectors_path)
        return VectorIndex.from_state(state)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexCorrupted(f"The index in {version_dir} cannot be loaded ({exc}); rebuild it.") from None


def _current_version(directory: Path) -> Path:
    pointer = directory / CURRENT
    if not pointer.is_file():
        raise IndexNotFound(f"No index in {directory} (no {CURRENT} file); build one with `vitrine index build`.")
    version_dir = directory / pointer.read_text().strip()
    if not version_dir.is_dir():
        raise IndexCorrupted(f"{pointer} names {version_dir.name}, which is missing; rebuild the index.")
    return version_dir


def _sweep(directory: Path, keep: str) -> None:
    """Remove older versions and partial saves left by crashes (best effort)."""
    for entry in directory.iterdir():
        if entry.is_dir() and entry.name != keep and (entry.name.startswith("v") or entry.name.endswith(".partial")):
            shutil.rmtree(entry, ignore_errors=True)


def _write_vectors(path: Path, state: IndexState) -> None:
    """Stream the vectors into a .npy file chunk by chunk: never the whole matrix in memory."""
    with NpyWriter(path, np.float32, len(state.vectors), state.dim) as out:
        for block in state.vectors.chunks():
            out.write(block)


class NpyWriter:
    """Append rows to a .npy file of known shape with plain writes: no memory map, so a large file
    written this way never counts in the writer's resident memory."""

    def __init__(self, path: Path, dtype: type | np.dtype, rows: int, dim: int | None = None) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.shape = (rows,) if dim is None else (rows, dim)
        self.written = 0
        self._handle = path.open("wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._handle, header)

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.shape[1:] or self.written + len(block) > self.shape[0]:
            raise ValueError(f"block of shape {block.shape} does not fit {self.path.name} {self.shape}")
        self._handle.write(block.tobytes())
        self.written += len(block)

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None and self.written != self.shape[0]:
                raise ValueError(f"{self.path.name}: wrote {self.written} rows of {self.shape[0]}")
            flush_handle(self._handle)
        finally:
            self._handle.close()


def write_json(path: Path, data: object) -> None:
    """JSON written and fsynced (a file of a version folder)."""
    _write_json(path, data)


def _write_json(path: Path, data: object) -> None:
    with path.open("w") as handle:
        json.dump(data, handle, indent=2)
        flush_handle(handle)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()

"""Save and load a `VectorIndex` atomically: versioned folders and a CURRENT pointer.

    INDEX_DIR/CURRENT            one line: the name of the complete version to load
    INDEX_DIR/v<ns>/manifest.json model id, dimension, index kind, count, sha256 of every file
    INDEX_DIR/v<ns>/*.npy, engine.faiss, dictionaries.json

A save writes a new version folder (each file fsynced), renames it into place, then replaces
CURRENT atomically (write, fsync, rename, fsync the folder). A crash at any moment leaves
CURRENT naming the previous complete version; leftovers are swept by the next save.

`VersionWriter` is the one writer of this format: `save_index` feeds it an index's rows, and
`index.build` streams the vector store's rows into it without holding an index.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.durable import flush_handle, fsync_path, write_atomically
from index.engines import EngineSpec
from index.errors import IndexCorrupted, IndexMismatch, IndexNotFound
from index.vector_index import IndexState, VectorIndex

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
ENGINE_FILE = "engine.faiss"
DICTIONARIES = "dictionaries.json"
VECTORS_FILE = "vectors.npy"


#: The row-aligned column files of a version besides the vectors, and their types.
COLUMNS: dict[str, type] = {
    "ids": np.int64,
    "alive": np.bool_,
    "price": np.float32,
    "category": np.int32,
    "vendor": np.int32,
    "in_stock": np.bool_,
}


@dataclass(frozen=True)
class RowBlock:
    """Consecutive rows of an index as a version holds them: one array per `COLUMNS` file, and the vectors."""

    columns: Mapping[str, np.ndarray]
    vectors: np.ndarray


def save_index(index: VectorIndex, directory: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write `index` as a new version of `directory` and make it current. Returns the version folder.

    `extra` is stored in the manifest for the caller (e.g. the vector-store segment the index covers).
    """
    version = VersionWriter(directory)
    with index.snapshot() as state:  # writers wait while the files are written, not while they are checksummed
        version.write_rows(state.dim, state.rows, _row_blocks(state))
        version.write_dictionaries(state.dictionaries)
        version.write_engine(state.engine)
        model_id, spec, count = state.model_id, state.spec, state.count
    return version.publish(model_id, spec, count, extra)


class VersionWriter:
    """Fills one new version folder and publishes it: the one writer of the saved format, whether
    the rows come from a `VectorIndex` (`save_index`) or stream from the vector store (`index.build`).

    Call `write_rows`, `write_dictionaries`, `write_engine` (any order), then `publish`, the commit
    point. A writer that never publishes leaves a partial folder, which the next save sweeps.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.version = f"v{time.time_ns()}"
        self.partial = self.directory / f".{self.version}.partial"
        self.partial.mkdir()
        self._shape: tuple[int, int] | None = None  # (rows, dim) once the rows are written

    def write_rows(self, dim: int, rows: int, blocks: Iterable[RowBlock]) -> None:
        """Stream exactly `rows` rows into the column files and the vectors, block by block, so memory
        holds one block, never the whole index."""
        with ExitStack() as files:
            columns = {
                name: files.enter_context(NpyWriter(self.partial / f"{name}.npy", dtype, rows))
                for name, dtype in COLUMNS.items()
            }
            vectors = files.enter_context(NpyWriter(self.partial / VECTORS_FILE, np.float32, rows, dim))
            for block in blocks:
                for name, out in columns.items():
                    out.write(block.columns[name])
                vectors.write(block.vectors)
        self._shape = (rows, dim)

    def write_dictionaries(self, dictionaries: dict[str, list[str]]) -> None:
        _write_json(self.partial / DICTIONARIES, dictionaries)

    def write_engine(self, engine: faiss.Index | None) -> None:
        """The FAISS structure, if any: a flat index built from the store saves none (loading adds the
        memory-mapped vectors to a fresh one: the same memory a saved copy would take, half the disk)."""
        if engine is not None:
            faiss.write_index(engine, str(self.partial / ENGINE_FILE))
            fsync_path(self.partial / ENGINE_FILE)

    def publish(self, model_id: str, spec: EngineSpec, count: int, extra: dict[str, Any] | None = None) -> Path:
        """Checksum the filled folder, rename it into place and make it current (the commit point)."""
        if self._shape is None:
            raise ValueError("publish before write_rows: a version needs its rows")
        rows, dim = self._shape
        manifest = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "dim": dim,
            "index_type": spec.kind,
            "engine": spec.to_json(),
            "count": count,
            "rows": rows,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "extra": extra or {},
            "files": {p.name: _sha256(p) for p in sorted(self.partial.iterdir())},
        }
        _write_json(self.partial / MANIFEST, manifest)
        fsync_path(self.partial)
        final = self.directory / self.version
        os.rename(self.partial, final)
        fsync_path(self.directory)
        write_atomically(self.directory / CURRENT, (self.version + "\n").encode())
        _sweep(self.directory, keep=self.version)
        return final


def _row_blocks(state: IndexState) -> Iterator[RowBlock]:
    """The index's rows in the blocks its vectors are read in (memory-mapped ones with plain reads)."""
    start = 0
    for vectors in state.vectors.chunks():
        stop = start + len(vectors)
        yield RowBlock({name: state.arrays[name][start:stop] for name in COLUMNS}, vectors)
        start = stop


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

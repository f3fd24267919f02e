"""A vector store that follows another through a linear map: how a learned version stays complete.

A learned version of a model (`vitrine learn`) embeds as normalize(v @ W) where v is what its
parent embeds, so its vector store is the parent's store re-projected, row for row, with no image
decoded again (`project_store`). While the new version is being built, and for a while after it
becomes active, writes can still land in the parent's store: an ingest that opened the parent
before the switch, a serving process that has not noticed it yet adding a customer view. The new
store therefore *follows* the parent: `follows.json` in its folder names the source store, the
last source segment already carried over and the matrix (`follows.npy`), and `catch_up` carries
over what the source gained since, upserts and deletions, by replaying its newer segments.
`vitrine learn --rollback` uses the same mechanism the other way (the older store follows the
newer through inv(W)), so products ingested after a promotion survive a rollback.

When the source was compacted past the marker (its deletions in that range are gone), a store that
has had no writes of its own is simply re-projected in full; one that has (it is the active version)
only gains the ids it lacks, never loses or overwrites its own rows.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalog.workspace import Workspace
from index.durable import write_atomically
from index.file_lock import exclusive_lock
from index.vector_store import STORE_FILE, VectorStore
from vision.adapter import project

FOLLOW_FILE = "follows.json"
FOLLOW_MATRIX = "follows.npy"
FOLLOW_LOCK = "follows.lock"
BATCH_ROWS = 8192

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Follow:
    source_model_id: str
    source_dim: int
    segment: int  # the source's last segment already carried over
    matrix: np.ndarray


def set_follow(
    workspace: Workspace, model_id: str, source_model_id: str, source_dim: int, segment: int, matrix: np.ndarray
) -> None:
    """Make `model_id`'s store follow `source_model_id`'s through `matrix`, from `segment` on."""
    directory = workspace.vectors_dir(model_id)
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{FOLLOW_MATRIX}.{os.getpid()}.tmp.npy"
    np.save(temporary, np.asarray(matrix, np.float32))
    os.replace(temporary, directory / FOLLOW_MATRIX)
    _write_marker(directory, source_model_id, source_dim, segment)


def follow_of(workspace: Workspace, model_id: str) -> Follow | None:
    directory = workspace.vectors_dir(model_id)
    marker = directory / FOLLOW_FILE
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    return Follow(
        data["source_model_id"], int(data["source_dim"]), int(data["segment"]), np.load(directory / FOLLOW_MATRIX)
    )


def follow_behind(workspace: Workspace, model_id: str) -> bool:
    """Whether the store `model_id` follows has segments not yet carried over (cheap: a folder listing)."""
    marker = workspace.vectors_dir(model_id) / FOLLOW_FILE
    if not marker.is_file():
        return False
    data = json.loads(marker.read_text())
    source = workspace.vectors_dir(data["source_model_id"])
    if not (source / STORE_FILE).is_file():
        return False
    return VectorStore(source, data["source_model_id"], int(data["source_dim"])).last_segment != int(data["segment"])


def project_store(
    source: VectorStore, target: VectorStore, matrix: np.ndarray, progress: Progress | None = None
) -> int:
    """Make `target` hold exactly `source`'s current rows, each re-projected: normalize(v @ matrix).

    Rows of `target` whose id `source` lacks are deleted. Returns the rows written."""
    written = 0
    for batch in source.scan(BATCH_ROWS):
        target.append(batch.ids, project(batch.vectors, matrix), batch.attributes)
        written += len(batch.ids)
        if progress:
            progress(written)
    extra = np.setdiff1d(target.live_ids(), source.live_ids())
    target.delete(extra)
    return written


def catch_up(workspace: Workspace, model_id: str, dim: int, own_writes: bool, progress: Progress | None = None) -> int:
    """Carry over what the followed store gained since the marker; returns the source rows read.

    `own_writes`: whether this store may hold rows written to it directly (it is or was active),
    which decides what happens when the source cannot be replayed (see the module docstring)."""
    follow = follow_of(workspace, model_id)
    if follow is None:
        return 0
    source_dir = workspace.vectors_dir(follow.source_model_id)
    if not (source_dir / STORE_FILE).is_file():
        return 0
    source = VectorStore(source_dir, follow.source_model_id, follow.source_dim)
    target = VectorStore(workspace.vectors_dir(model_id), model_id, dim)
    with _locked(target.directory):
        follow = follow_of(workspace, model_id) or follow  # another process may have caught up meanwhile
        last = source.last_segment
        if last == follow.segment:
            return 0
        rows = 0
        if follow.segment == 0 and not own_writes:  # from scratch: exactly the source's rows
            rows = project_store(source, target, follow.matrix, progress)
        elif source.replayable_since(follow.segment):
            for batch, deleted in source.changes_since(follow.segment):
                live = ~np.asarray(deleted, bool)
                if live.any():
                    attributes = [a for a, keep in zip(batch.attributes, live, strict=True) if keep]
                    target.append(batch.ids[live], project(batch.vectors[live], follow.matrix), attributes)
                if (~live).any():
                    target.delete(batch.ids[~live])
                rows += len(batch.ids)
                if progress:
                    progress(rows)
        elif own_writes:
            for batch in source.scan(BATCH_ROWS):
                found, _ = target.vectors_of(batch.ids)
                missing = ~found
                if missing.any():
                    attributes = [a for a, keep in zip(batch.attributes, missing, strict=True) if keep]
                    target.append(batch.ids[missing], project(batch.vectors[missing], follow.matrix), attributes)
                rows += len(batch.ids)
                if progress:
                    progress(rows)
        else:
            rows = project_store(source, target, follow.matrix, progress)
        _write_marker(target.directory, follow.source_model_id, follow.source_dim, last)
        return rows


def _write_marker(directory: Path, source_model_id: str, source_dim: int, segment: int) -> None:
    payload = {"source_model_id": source_model_id, "source_dim": source_dim, "segment": segment}
    write_atomically(directory / FOLLOW_FILE, json.dumps(payload).encode())


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One catch-up of a store at a time (several serving processes may notice the same switch)."""
    with exclusive_lock(directory / FOLLOW_LOCK):
        yield

"""Learned versions in the model store, the active-version pointer, promotion and rollback.

A learned version of `demo` is the model folder `demo+pairs-<n>` (`vision.adapter.build_adapted`).
Which version the name `demo` means is the pointer `$VITRINE_HOME/models/demo.active`:

    {"base": "demo", "active": "demo+pairs-2", "stack": ["demo", "demo+pairs-1", "demo+pairs-2"],
     "history": [{"event": "promoted", "version": "demo+pairs-1", ...}, ...]}

`stack` is the chain of versions, each learned from the one before it; `active` is its top;
`history` logs every promotion and rollback. `ModelStore.resolve("demo")` follows `active`, so every
command that opens `demo` (serve, search, ingest, eval, pairs import) gets the active version;
`demo+pairs-1` by name is that version, whatever is active.

Promotion, in order: the version's folder (written aside, renamed into place); its vector store,
the parent's re-projected row by row (catalog images and customer views: normalize(v @ W)), set to
follow the parent's store (`catalog.store_follow`); its index published; then, holding the parent
store's append lock (the flock every append to that store takes, ingest's and the serving app's
alike, so no segment can land in between), a last catch-up and the pointer, replaced atomically
(`os.replace`). The pointer is written last: a crash at any earlier step leaves the previous version
active and untouched (the half-made version is an unused folder; the next run takes the next number).

Rollback moves the pointer back down the stack after bringing the older version's store up to date
the same way: it follows the newer store through inv(W), so what was ingested (or removed, or added
as customer views) while the newer version was active is there after the rollback.

Locks: one `vitrine learn` at a time per data folder (`learning.lock` in VITRINE_HOME, flock).
Ingest has no lock of its own beyond the store's append lock; learning never writes to a store an
ingest writes to: it reads the parent's and writes the new version's, which only becomes anyone's
target when the pointer moves. Writes that still reach the parent's store after that (an ingest
that opened the model before the switch, a serving process that has not noticed it yet) are carried
over by the follow mechanism: the serving app catches up when it switches and on every index
refresh, and a later learn or rollback catches up too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from catalog.catalog_index import publish_index
from catalog.store_follow import catch_up, project_store, set_follow
from catalog.workspace import Workspace
from index.durable import fsync_path
from index.file_lock import LockHeld, exclusive_lock
from index.vector_store import STORE_FILE, VectorStore, append_lock
from vision.adapter import ADAPTER_FILE, adapter_of, build_adapted
from vision.manifest import ModelManifest
from vision.model_store import VERSION_MARK, ModelStore

LOCK_FILE = "learning.lock"
Progress = Callable[[str, int, int], None]  # (phase, done, total)


class LearningError(Exception):
    """`vitrine learn` cannot do what was asked; the message says why and what to do."""


def quiet(_phase: str, _done: int, _total: int) -> None:
    return None


def base_name(name: str) -> str:
    """The model name a version belongs to: `demo` for `demo+pairs-3`."""
    return name.split(VERSION_MARK, 1)[0]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def learning_lock(workspace: Workspace) -> Iterator[None]:
    """One learn or rollback at a time in a data folder; a second one is refused at once."""
    path = workspace.home / LOCK_FILE
    try:
        with exclusive_lock(path, wait=False):
            yield
    except LockHeld:
        raise LearningError(f"another `vitrine learn` is running on {workspace.home} (it holds {path})") from None


# --- the pointer ---------------------------------------------------------------------------------------------


def read_pointer(store: ModelStore, base: str) -> dict:
    path = store.pointer_path(base)
    if not path.is_file():
        return {"base": base, "active": base, "stack": [base], "history": []}
    data = json.loads(path.read_text())
    data.setdefault("stack", [data.get("active", base)])
    data.setdefault("history", [])
    return data


def write_pointer(store: ModelStore, base: str, data: dict) -> None:
    """Replace the pointer atomically: readers see the old one or the new one, never a mix."""
    path = store.pointer_path(base)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)
    fsync_path(path.parent)


def next_version_name(store: ModelStore, base: str) -> str:
    """`<base>+pairs-<n>`, n one more than any version of `base` on disk or in its pointer."""
    pattern = re.compile(re.escape(base + VERSION_MARK) + r"(\d+)$")
    names = [p.name for p in store.installed_root.glob(f"{base}{VERSION_MARK}*")]
    names += read_pointer(store, base)["stack"]
    numbers = [int(m.group(1)) for m in map(pattern.match, names) if m]
    return f"{base}{VERSION_MARK}{max(numbers, default=0) + 1}"


# --- promotion -----------------------------------------------------------------------------------------------


def parent_store(workspace: Workspace, parent: ModelManifest) -> VectorStore:
    directory = workspace.vectors_dir(parent.model_id)
    if not (directory / STORE_FILE).is_file():
        raise LearningError(
            f"there is no catalog for model {parent.name} ({parent.model_id}) in {workspace.home}; "
            f"run `vitrine ingest CATALOG --vendor NAME --model {base_name(parent.name)}` first"
        )
    return VectorStore(directory, parent.model_id, parent.embed_dim)


def make_version(
    store: ModelStore, parent_dir: Path, parent: ModelManifest, matrix: np.ndarray, name: str, extra: dict
) -> tuple[Path, ModelManifest]:
    """Write the version's model folder; nothing points at it yet."""
    directory = store.installed_dir(name)
    return directory, build_adapted(parent_dir, parent, name, matrix, directory, extra)


def publish_version(
    workspace: Workspace,
    parent: ModelManifest,
    version: ModelManifest,
    matrix: np.ndarray,
    progress: Progress = quiet,
) -> dict:
    """The version's vector store (the parent's re-projected, following it from here on) and its index."""
    source = parent_store(workspace, parent)
    total = source.count()
    start = source.last_segment
    target = VectorStore(workspace.vectors_dir(version.model_id), version.model_id, version.embed_dim)
    progress("re-projecting the catalog", 0, total)
    rows = project_store(source, target, matrix, lambda done: progress("re-projecting the catalog", done, total))
    set_follow(workspace, version.model_id, parent.model_id, parent.embed_dim, start, matrix)
    catch_up(workspace, version.model_id, version.embed_dim, own_writes=False)
    progress("publishing the index", 0, 1)
    published = publish_index(workspace, version.model_id, version.embed_dim)
    progress("publishing the index", 1, 1)
    return {"rows": rows, "index": {key: published[key] for key in ("mode", "index_type", "count")}}


def activate(
    store: ModelStore, workspace: Workspace, base: str, parent: ModelManifest, version: ModelManifest, record: dict
) -> dict:
    """Make `version` (learned from `parent`, the active version) what `base` means. Written last."""
    pointer = read_pointer(store, base)
    if pointer["active"] != parent.name:
        raise LearningError(f"{base} is now {pointer['active']}, not {parent.name}: the pointer moved meanwhile")
    source = parent_store(workspace, parent)
    with append_lock(source.directory):  # no segment lands in the parent between this catch-up and the swap
        catch_up(workspace, version.model_id, version.embed_dim, own_writes=False)
        segment = VectorStore(workspace.vectors_dir(version.model_id), version.model_id, version.embed_dim).last_segment
        pointer["active"] = version.name
        pointer["stack"] = [*pointer["stack"], version.name]
        entry = {
            "event": "promoted",
            "version": version.name,
            "model_id": version.model_id,
            "parent": parent.name,
            "parent_model_id": parent.model_id,
            "store_segment": segment,
            "at": now_iso(),
            **record,
        }
        pointer["history"] = [*pointer["history"], entry]
        write_pointer(store, base, pointer)
    return entry


# --- rollback ------------------------------------------------------------------------------------------------


def rollback(store: ModelStore, workspace: Workspace, model: str, progress: Progress = quiet) -> dict:
    """Make `model` mean the version before its active one again, with every product it gained since."""
    base = base_name(model)
    with learning_lock(workspace):
        pointer = read_pointer(store, base)
        stack = pointer["stack"]
        if len(stack) < 2:
            raise LearningError(f"{base} has no learned version to roll back (it is {pointer['active']})")
        current_name, previous_name = stack[-1], stack[-2]
        current_dir, current = store.resolve(current_name, follow_active=False)
        _, previous = store.resolve(previous_name, follow_active=False)
        matrix = adapter_of(current_dir)
        if matrix is None or current.source.get("parent") != previous_name:
            raise LearningError(f"{current_name} was not learned from {previous_name} ({ADAPTER_FILE} missing)")
        if current.source.get("parent_model_id") != previous.model_id:
            raise LearningError(
                f"{previous_name} is not the model {current_name} was learned from any more "
                f"({previous.model_id}, was {current.source.get('parent_model_id')}): it was re-exported since. "
                f"Re-ingest the catalog with `--model {previous_name}` before rolling back"
            )
        if np.linalg.cond(matrix) > 1e6:
            raise LearningError(f"the adapter of {current_name} cannot be inverted; re-ingest with {previous_name}")
        inverse = np.linalg.inv(matrix.astype(np.float64)).astype(np.float32)
        newer = parent_store(workspace, current)
        since = next(
            (
                int(e.get("store_segment", 0))
                for e in reversed(pointer["history"])
                if e.get("event") == "promoted" and e.get("version") == current_name
            ),
            0,
        )
        VectorStore(workspace.vectors_dir(previous.model_id), previous.model_id, previous.embed_dim)
        set_follow(workspace, previous.model_id, current.model_id, current.embed_dim, since, inverse)
        total = newer.count()
        progress("bringing the previous version up to date", 0, total)
        report = lambda done: progress("bringing the previous version up to date", done, total)  # noqa: E731
        carried = catch_up(workspace, previous.model_id, previous.embed_dim, own_writes=False, progress=report)
        progress("publishing the index", 0, 1)
        published = publish_index(workspace, previous.model_id, previous.embed_dim)
        progress("publishing the index", 1, 1)
        with append_lock(newer.directory):
            carried += catch_up(workspace, previous.model_id, previous.embed_dim, own_writes=False)
            pointer["active"] = previous_name
            pointer["stack"] = stack[:-1]
            entry = {
                "event": "rolled_back",
                "from": current_name,
                "from_model_id": current.model_id,
                "to": previous_name,
                "model_id": previous.model_id,
                "at": now_iso(),
            }
            pointer["history"] = [*pointer["history"], entry]
            write_pointer(store, base, pointer)
        return {
            "model": base,
            "rolled_back": True,
            "from": current_name,
            "to": previous_name,
            "model_id": previous.model_id,
            "rows_carried_over": carried,
            "index": {key: published[key] for key in ("mode", "index_type", "count")},
        }

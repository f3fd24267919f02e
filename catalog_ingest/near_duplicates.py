"""One vendor's image vectors during an ingest, on disk, to report near-duplicate products.

The ingest holds no index of the catalog (it writes the vector store and rebuilds the saved index
at the end), and holding even this vendor's vectors in memory would make an ingest's memory grow
with the catalog. So the vendor's vectors live in a scratch inverted file on disk: cells of at most
`LIST_MAX` vectors (float16, cosines good to about 1e-3, plenty for a 0.97 threshold), each a pair
of plain files read with ordinary reads (no memory map, so nothing read counts in resident memory);
in memory only a centroid per cell. A cell that outgrows `LIST_MAX` is split in two (2-means), so
the cells follow the data as it arrives, with no training pass and no catalog size known up front.

A query compares against the `PROBES` cells with the nearest centroids: at most
`PROBES * LIST_MAX` vectors whatever the catalog's size, instead of every vector of the vendor. A
near-duplicate (cosine ≥ 0.97, about 14°) sits next to its query and shares one of its nearest
cells; an identical photo always lands in the same cell.

Rows are not rewritten at once to remove them: `remove` records, for each id, the serial number up
to which its rows are hidden. When `HIDDEN_MAX` ids are recorded, every cell is rewritten without
its hidden rows and the record starts again, so memory for removals stays bounded however many
images a run replaces or removes (one pass over the vendor's cells per `HIDDEN_MAX` removals).
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import faiss
import numpy as np

from index.vector_store import VectorStore

LIST_MAX = 1024
PROBES = 8
HIDDEN_MAX = 65_536  # ids whose rows are hidden before the cells are purged (about 10 MB of dict)
IDENTICAL_KEEP = 8  # rows kept of one vector repeated in a cell (as many as a query asks for)
_ENTRY = np.dtype([("id", "<i8"), ("serial", "<i8")])
_scratch_numbers = itertools.count()


class VendorVectors:
    def __init__(
        self,
        dim: int,
        directory: Path,
        list_max: int = LIST_MAX,
        probes: int = PROBES,
        hidden_max: int = HIDDEN_MAX,
    ) -> None:
        self.dim = dim
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.list_max = list_max
        self.probes = probes
        self.hidden_max = hidden_max
        self._centroids = np.empty((0, dim), np.float32)
        self._sizes: list[int] = []
        self._split_at: list[int] = []  # a cell of identical vectors cannot split: retry when it has doubled
        self._serial = 0
        self._hidden: dict[int, int] = {}  # id → serial below which its rows no longer count

    @classmethod
    def load(cls, store: VectorStore, vendor: str, directory: Path, **options: int) -> VendorVectors:
        """This vendor's current vectors, read from the store a row group at a time."""
        found = cls(store.dim, directory, **options)
        for batch in store.scan():
            mine = np.fromiter((a.vendor == vendor for a in batch.attributes), bool, len(batch.ids))
            if mine.any():
                found.add(batch.ids[mine], batch.vectors[mine])
        return found

    @classmethod
    def scratch(cls, store: VectorStore, vendor: str, parent: Path, **options: int) -> VendorVectors:
        """`load` into a fresh folder under `parent` (removed by `close`)."""
        directory = Path(parent) / f"near-{os.getpid()}-{next(_scratch_numbers)}"
        shutil.rmtree(directory, ignore_errors=True)
        return cls.load(store, vendor, directory, **options)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __len__(self) -> int:
        """Live rows (reads every cell: for checks, not for the ingest's hot path)."""
        return sum(int(self._visible(self._read(cell)[0]).sum()) for cell in range(self.cells))

    @property
    def cells(self) -> int:
        return len(self._sizes)

    # ---- writing -------------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Rows for these ids (unit vectors); rows added earlier for the same ids stay unless removed."""
        ids = np.asarray(ids, np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        if not len(ids):
            return
        entries = np.empty(len(ids), _ENTRY)
        entries["id"] = ids
        entries["serial"] = np.arange(self._serial, self._serial + len(ids))
        self._serial += len(ids)
        if not self._sizes:
            self._new_cell(vectors[0])
        cell_of = np.argmax(vectors @ self._centroids.T, axis=1)
        for cell in np.unique(cell_of):
            mine = cell_of == cell
            self._append(int(cell), entries[mine], vectors[mine])
        for cell in np.unique(cell_of):
            if self._sizes[cell] > max(self.list_max, self._split_at[cell]):
                self._split(int(cell))

    def remove(self, ids: np.ndarray) -> None:
        """Hide every row added so far for these ids (an image replaced or removed in this run)."""
        for i in np.asarray(ids, np.int64).tolist():
            self._hidden[i] = self._serial
        if len(self._hidden) >= self.hidden_max:
            self._purge_hidden()

    @property
    def hidden(self) -> int:
        """Ids whose hidden rows still wait in the cells (bounded by `hidden_max`)."""
        return len(self._hidden)

    # ---- searching -----------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query, up to k (id, cosine) best first, among live rows of the cells nearest to it."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        found: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
        if not self._sizes or not len(queries):
            return [[] for _ in range(len(queries))]
        probes = min(self.probes, self.cells)
        near_cells = np.argsort(-(queries @ self._centroids.T), axis=1)[:, :probes]
        for cell in np.unique(near_cells):
            asking = np.flatnonzero((near_cells == cell).any(axis=1))
            entries, vectors = self._read(int(cell))
            keep = self._visible(entries)
            if not keep.all():
                entries, vectors = entries[keep], vectors[keep]
            if not len(entries):
                continue
            scores = queries[asking] @ vectors.T
            top = min(k, len(entries))
            best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
            for at, (q, rows) in enumerate(zip(asking.tolist(), best, strict=True)):
                found[q].extend(zip(scores[at, rows].tolist(), entries["id"][rows].tolist(), strict=True))
        return [[(i, s) for s, i in sorted(hits, reverse=True)[:k]] for hits in found]

    # ---- the cells on disk ---------------------------------------------------------------------------

    def _paths(self, cell: int) -> tuple[Path, Path]:
        return self.directory / f"{cell:06d}.ids", self.directory / f"{cell:06d}.f16"

    def _new_cell(self, centroid: np.ndarray) -> int:
        self._centroids = np.vstack([self._centroids, centroid.reshape(1, self.dim).astype(np.float32)])
        self._sizes.append(0)
        self._split_at.append(0)
        for path in self._paths(len(self._sizes) - 1):
            path.write_bytes(b"")
        return len(self._sizes) - 1

    def _append(self, cell: int, entries: np.ndarray, vectors: np.ndarray) -> None:
        ids_path, vectors_path = self._paths(cell)
        with ids_path.open("ab") as handle:
            handle.write(entries.tobytes())
        with vectors_path.open("ab") as handle:
            handle.write(vectors.astype(np.float16).tobytes())
        self._sizes[cell] += len(entries)

    def _read(self, cell: int) -> tuple[np.ndarray, np.ndarray]:
        ids_path, vectors_path = self._paths(cell)
        entries = np.fromfile(ids_path, _ENTRY)
        vectors = np.fromfile(vectors_path, np.float16).reshape(len(entries), self.dim).astype(np.float32)
        return entries, vectors

    def _write(self, cell: int, entries: np.ndarray, vectors: np.ndarray) -> None:
        for path, data in zip(self._paths(cell), (entries, vectors.astype(np.float16)), strict=True):
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_bytes(data.tobytes())
            os.replace(temporary, path)
        self._sizes[cell] = len(entries)

    def _visible(self, entries: np.ndarray) -> np.ndarray:
        if not self._hidden:
            return np.ones(len(entries), bool)
        below = np.fromiter((self._hidden.get(i, -1) for i in entries["id"].tolist()), np.int64, len(entries))
        return entries["serial"] >= below

    def _purge_hidden(self) -> None:
        """Rewrite each cell without its hidden rows; then nothing is hidden any more."""
        for cell in range(self.cells):
            entries, vectors = self._read(cell)
            keep = self._visible(entries)
            if not keep.all():
                self._write(cell, entries[keep], vectors[keep])
        self._hidden.clear()

    def _split(self, cell: int) -> None:
        """Two cells from one by 2-means on its vectors; rows hidden by now are dropped on the way.

        A cell that cannot split holds copies of the same vector (one stock photo behind many
        products): it keeps `IDENTICAL_KEEP` rows of each, enough to name a product that has it, so
        it does not grow with the catalog and make every later query read all the copies."""
        entries, vectors = self._read(cell)
        keep = self._visible(entries)
        entries, vectors = entries[keep], vectors[keep]
        split = False
        if len(entries) > self.list_max:
            kmeans = faiss.Kmeans(self.dim, 2, niter=8, spherical=True, seed=len(self._sizes))
            kmeans.train(vectors)
            side = np.argmax(vectors @ kmeans.centroids.T, axis=1).astype(bool)
            if side.any() and not side.all():
                self._centroids[cell] = kmeans.centroids[0]
                other = self._new_cell(kmeans.centroids[1])
                self._write(other, entries[side], vectors[side])
                entries, vectors = entries[~side], vectors[~side]
                split = True
        if not split and len(entries) > self.list_max:
            kept = _first_copies(vectors, IDENTICAL_KEEP)
            entries, vectors = entries[kept], vectors[kept]
        self._write(cell, entries, vectors)
        self._split_at[cell] = 2 * self._sizes[cell] if self._sizes[cell] > self.list_max else 0


def _first_copies(vectors: np.ndarray, keep: int) -> np.ndarray:
    """Mask of the rows that are among the first `keep` rows holding their exact vector."""
    rows = np.ascontiguousarray(vectors).view(np.dtype((np.void, vectors.dtype.itemsize * vectors.shape[1])))
    _, group = np.unique(rows.ravel(), return_inverse=True)
    order = np.argsort(group.ravel(), kind="stable")
    grouped = group.ravel()[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    rank = np.arange(len(grouped)) - np.repeat(starts, np.diff(np.r_[starts, len(grouped)]))
    mask = np.zeros(len(vectors), dtype=bool)
    mask[order[rank < keep]] = True
    return mask

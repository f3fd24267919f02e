"""The Parquet vector store: the source of truth from which any index can be rebuilt.

Append-only segments (`segment-00000001.parquet`, ...), each written to a temporary name,
fsynced and renamed, so a crash never leaves half a segment. A row is an upsert (id, model id,
vector, filter attributes) or a tombstone (`deleted`); the latest row of an id wins.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index.durable import fsync_path, write_atomically
from index.errors import IndexMismatch, IndexNotFound
from index.filters import ItemAttributes

STORE_FILE = "store.json"


@dataclass(frozen=True)
class VectorBatch:
    ids: np.ndarray
    vectors: np.ndarray
    attributes: list[ItemAttributes]


class VectorStore:
    """Vectors of one model; mixing in another model's vectors is refused."""

    def __init__(self, directory: Path, model_id: str, dim: int) -> None:
        self.directory = Path(directory)
        self.model_id = model_id
        self.dim = dim
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self.directory / STORE_FILE
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if (meta["model_id"], meta["dim"]) != (model_id, dim):
                raise IndexMismatch(
                    f"The vector store in {self.directory} holds model {meta['model_id']!r} ({meta['dim']}-d), "
                    f"not {model_id!r} ({dim}-d); use another store or re-embed."
                )
        else:
            write_atomically(meta_path, json.dumps({"model_id": model_id, "dim": dim, "format_version": 1}).encode())

    @classmethod
    def open(cls, directory: Path) -> VectorStore:
        meta_path = Path(directory) / STORE_FILE
        if not meta_path.is_file():
            raise IndexNotFound(f"No vector store in {directory} (no {STORE_FILE}).")
        meta = json.loads(meta_path.read_text())
        return cls(Path(directory), meta["model_id"], int(meta["dim"]))

    def append(
        self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray, attributes: Sequence[ItemAttributes] | None = None
    ) -> None:
        """Upsert rows: the newest row of an id is the one that counts."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise IndexMismatch(f"expected {len(ids)} vectors of dimension {self.dim}, got {vectors.shape}")
        attributes = list(attributes) if attributes is not None else [ItemAttributes()] * len(ids)
        self._write_segment(ids, vectors, attributes, deleted=False)

    def delete(self, ids: Sequence[int] | np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        self._write_segment(ids, np.zeros((len(ids), self.dim), np.float32), [ItemAttributes()] * len(ids), True)

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("segment-*.parquet"))

    @property
    def last_segment(self) -> int:
        """Number of the newest segment (0 when empty): an index records it to catch up later."""
        segments = self.segments()
        return _segment_number(segments[-1]) if segments else 0

    def changes_since(self, segment: int) -> Iterator[tuple[VectorBatch, np.ndarray]]:
        """Every row written after `segment`, in order, with its deleted flag: what an index replays."""
        for path in self.segments():
            if _segment_number(path) > segment:
                table = pq.read_table(path)
                yield _to_batch(table, self.dim), table.column("deleted").to_numpy(zero_copy_only=False)

    def live_ids(self) -> np.ndarray:
        """Ids whose latest row is not a tombstone."""
        parts = [pq.read_table(path, columns=["id"]).column("id").to_numpy()[rows] for path, rows in self._winners()]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def count(self) -> int:
        return sum(len(winners) for _, winners in self._winners())

    def scan(self, batch_rows: int = 65536) -> Iterator[VectorBatch]:
        """The current rows (latest per id, tombstoned ids left out), segment by segment."""
        for path, winners in self._winners():
            if not len(winners):
                continue
            table = pq.read_table(path).take(pa.array(winners))
            for start in range(0, table.num_rows, batch_rows):
                yield _to_batch(table.slice(start, batch_rows), self.dim)

    def sample(self, size: int, seed: int = 0) -> np.ndarray:
        """Up to `size` current vectors drawn uniformly, e.g. to train an inverted file without bias."""
        winners = self._winners()
        total = sum(len(w) for _, w in winners)
        if total == 0:
            return np.empty((0, self.dim), np.float32)
        picks = np.sort(np.random.default_rng(seed).choice(total, size=min(size, total), replace=False))
        out, offset = [], 0
        for path, rows in winners:
            mine = picks[(picks >= offset) & (picks < offset + len(rows))] - offset
            if len(mine):
                table = pq.read_table(path, columns=["vector"]).take(pa.array(rows[mine]))
                out.append(_vectors_of(table, self.dim))
            offset += len(rows)
        return np.concatenate(out)

    def _winners(self) -> list[tuple[Path, np.ndarray]]:
        """Per segment, the row numbers that hold the latest live version of their id."""
        segments = self.segments()
        ids, seqs, seg_of, row_of, deleted = [], [], [], [], []
        seq = 0
        for number, path in enumerate(segments):
            table = pq.read_table(path, columns=["id", "deleted"])
            n = table.num_rows
            ids.append(table.column("id").to_numpy())
            deleted.append(table.column("deleted").to_numpy(zero_copy_only=False))
            seqs.append(np.arange(seq, seq + n))
            seg_of.append(np.full(n, number))
            row_of.append(np.arange(n))
            seq += n
        if not segments or seq == 0:
            return [(p, np.empty(0, np.int64)) for p in segments]
        ids_all, seq_all = np.concatenate(ids), np.concatenate(seqs)
        order = np.lexsort((seq_all, ids_all))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = ids_all[order][1:] != ids_all[order][:-1]
        chosen = order[last]
        chosen = chosen[~np.concatenate(deleted)[chosen]]
        seg_all, row_all = np.concatenate(seg_of), np.concatenate(row_of)
        return [(path, np.sort(row_all[chosen[seg_all[chosen] == n]])) for n, path in enumerate(segments)]

    def _write_segment(
        self, ids: np.ndarray, vectors: np.ndarray, attributes: list[ItemAttributes], deleted: bool
    ) -> None:
        if len(attributes) != len(ids):
            raise ValueError(f"got {len(attributes)} attribute rows for {len(ids)} ids")
        table = pa.table(
            {
                "id": pa.array(ids, pa.int64()),
                "model_id": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(len(ids), np.int32)), pa.array([self.model_id])
                ),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), self.dim),
                "deleted": pa.array(np.full(len(ids), deleted)),
                "price": pa.array([a.price if math.isfinite(a.price) else None for a in attributes], pa.float32()),
                "category": pa.array([a.category for a in attributes], pa.string()),
                "vendor": pa.array([a.vendor for a in attributes], pa.string()),
                "in_stock": pa.array([a.in_stock for a in attributes], pa.bool_()),
            }
        )
        number = self.last_segment + 1
        final = self.directory / f"segment-{number:08d}.parquet"
        temporary = self.directory / f".{final.name}.tmp"
        pq.write_table(table, temporary)
        fsync_path(temporary)
        os.replace(temporary, final)
        fsync_path(self.directory)


def _segment_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def _vectors_of(table: pa.Table, dim: int) -> np.ndarray:
    column = table.column("vector").combine_chunks()
    return column.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)


def _to_batch(table: pa.Table, dim: int) -> VectorBatch:
    prices = table.column("price").to_numpy(zero_copy_only=False)
    attributes = [
        ItemAttributes(price=float("nan") if p is None or p != p else float(p), category=c, vendor=v, in_stock=s)
        for p, c, v, s in zip(
            prices,
            table.column("category").to_pylist(),
            table.column("vendor").to_pylist(),
            table.column("in_stock").to_pylist(),
            strict=True,
        )
    ]
    return VectorBatch(table.column("id").to_numpy(), _vectors_of(table, dim), attributes)

"""int64 ids → internal rows, compact at millions of ids (sorted arrays, not a Python dict per id).

Rows are append-only: an upsert writes a new row and the id's previous row dies. Recent changes
sit in a small dict and are merged into the sorted arrays when it grows, so lookups stay
vectorised and memory stays near 16 bytes per id.
"""

from __future__ import annotations

import numpy as np

_MERGE_AT = 65_536
_GONE = -1


class IdMap:
    def __init__(self, ids: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        ids = np.asarray(ids if ids is not None else [], dtype=np.int64)
        rows = np.asarray(rows if rows is not None else [], dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self._ids, self._rows = ids[order], rows[order]
        if len(self._ids) and (np.diff(self._ids) == 0).any():
            raise ValueError("duplicate ids in the id map")
        self._recent: dict[int, int] = {}
        self._count = len(self._ids)

    def __len__(self) -> int:
        return self._count

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The live row of each id, or -1 where the id is absent."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.full(len(ids), _GONE, dtype=np.int64)
        if len(self._ids):
            where = np.searchsorted(self._ids, ids).clip(0, len(self._ids) - 1)
            hit = self._ids[where] == ids
            rows[hit] = self._rows[where[hit]]
        if self._recent:
            for i, key in enumerate(ids.tolist()):
                override = self._recent.get(key)
                if override is not None:
                    rows[i] = override
        return rows

    def set(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Point each id at its new row (ids must be distinct)."""
        before = self.rows_of(ids)
        self._count += int((before == _GONE).sum())
        self._recent.update(zip(np.asarray(ids, np.int64).tolist(), np.asarray(rows, np.int64).tolist(), strict=True))
        self._maybe_merge()

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Forget the ids; returns the rows they had (-1 for ids that were absent)."""
        before = self.rows_of(ids)
        present = np.asarray(ids, np.int64)[before != _GONE]
        self._count -= len(present)
        self._recent.update(dict.fromkeys(present.tolist(), _GONE))
        self._maybe_merge()
        return before

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, rows), sorted by id."""
        self._merge()
        return self._ids.copy(), self._rows.copy()

    def _maybe_merge(self) -> None:
        if len(self._recent) >= _MERGE_AT:
            self._merge()

    def _merge(self) -> None:
        if not self._recent:
            return
        changed = np.fromiter(self._recent.keys(), np.int64, len(self._recent))
        new_rows = np.fromiter(self._recent.values(), np.int64, len(self._recent))
        keep = ~np.isin(self._ids, changed)
        live = new_rows != _GONE
        ids = np.concatenate([self._ids[keep], changed[live]])
        rows = np.concatenate([self._rows[keep], new_rows[live]])
        order = np.argsort(ids, kind="stable")
        self._ids, self._rows = ids[order], rows[order]
        self._recent = {}

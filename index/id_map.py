"""int64 ids → internal rows, compact at millions of ids (sorted arrays, not a Python dict per id).

Rows are append-only: an upsert writes a new row and the id's previous row dies. Recent changes
sit in a small dict and are merged into the sorted arrays when it grows, so lookups stay
vectorised and memory stays near 16 bytes per id.

This is the project's one sorted id → row lookup: the index's ids, the vector store's latest row
per id (`IdMap.positions`) and the ingest's products seen in a file all use it.
"""

from __future__ import annotations

import numpy as np

_MERGE_AT = 65_536
_GONE = -1
#: Up to this many ids a lookup goes id by id; above, it is vectorised over the sorted arrays.
_LOOP_LOOKUPS = 8


class IdMap:
    def __init__(
        self, ids: np.ndarray | None = None, rows: np.ndarray | None = None, merge_at: int = _MERGE_AT
    ) -> None:
        """`merge_at`: recent changes held in the dict before a merge; a smaller one bounds the memory
        of a map written one id at a time (about 150 bytes per recent id against 16 merged)."""
        ids = np.asarray(ids if ids is not None else [], dtype=np.int64)
        rows = np.asarray(rows if rows is not None else [], dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self._ids: np.ndarray = ids[order]
        self._rows: np.ndarray | None = rows[order]
        if len(self._ids) and (np.diff(self._ids) == 0).any():
            raise ValueError("duplicate ids in the id map")
        self._recent: dict[int, int] = {}
        self._count = len(self._ids)
        self._merge_at = merge_at

    @classmethod
    def positions(cls, sorted_ids: np.ndarray) -> IdMap:
        """Each id's position in `sorted_ids` (strictly increasing), for arrays sorted by id that are
        already held: no sort, no copy and no row array, so it costs no memory per id."""
        ids = np.asarray(sorted_ids, dtype=np.int64)
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            raise ValueError("positions need strictly increasing ids")
        id_map = cls()
        id_map._ids, id_map._rows, id_map._count = ids, None, len(ids)
        return id_map

    def __len__(self) -> int:
        return self._count

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The live row of each id, or -1 where the id is absent."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) <= _LOOP_LOOKUPS:  # a few ids (one per ingested row, say): scalar lookups are cheaper
            return np.fromiter((self.row_of(i) for i in ids.tolist()), np.int64, len(ids))
        rows = np.full(len(ids), _GONE, dtype=np.int64)
        if len(self._ids):
            where = np.searchsorted(self._ids, ids).clip(0, len(self._ids) - 1)
            hit = self._ids[where] == ids
            rows[hit] = where[hit] if self._rows is None else self._rows[where[hit]]
        if self._recent:
            self._apply_recent(ids, rows)
        return rows

    def row_of(self, item_id: int) -> int:
        """The live row of one id, or -1."""
        item_id = int(item_id)
        recent = self._recent.get(item_id)
        if recent is not None:
            return recent
        where = int(np.searchsorted(self._ids, item_id))
        if where == len(self._ids) or self._ids[where] != item_id:
            return _GONE
        return where if self._rows is None else int(self._rows[where])

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Whether each id is present."""
        return self.rows_of(ids) != _GONE

    def set(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Point each id at its new row (ids must be distinct)."""
        before = self.rows_of(ids)
        self._count += int((before == _GONE).sum())
        self._recent.update(zip(np.asarray(ids, np.int64).tolist(), np.asarray(rows, np.int64).tolist(), strict=True))
        self._maybe_merge()

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Forget the ids; returns the rows they had (-1 for ids that were absent)."""
        before = self.rows_of(ids)
        present = np.asarray(ids, np.int64).reshape(-1)[before != _GONE]
        self._count -= len(present)
        self._recent.update(dict.fromkeys(present.tolist(), _GONE))
        self._maybe_merge()
        return before

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, rows), sorted by id. Reads only: concurrent lookups may run meanwhile."""
        ids, rows = self._merged()
        return (ids.copy(), rows.copy()) if ids is self._ids else (ids, rows)

    def _apply_recent(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Let the recent changes override the sorted arrays' answers in `rows`."""
        if len(ids) <= len(self._recent):
            for i, key in enumerate(ids.tolist()):
                override = self._recent.get(key)
                if override is not None:
                    rows[i] = override
            return
        keys, values = self._recent_arrays()
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        where = np.searchsorted(keys, ids).clip(0, len(keys) - 1)
        hit = keys[where] == ids
        rows[hit] = values[where[hit]]

    def _recent_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        recent = self._recent
        return np.fromiter(recent.keys(), np.int64, len(recent)), np.fromiter(recent.values(), np.int64, len(recent))

    def _maybe_merge(self) -> None:
        if len(self._recent) >= self._merge_at:
            self._ids, self._rows = self._merged()
            self._recent = {}

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        """The sorted arrays with the recent changes applied (a new pair; the map itself unchanged)."""
        rows = np.arange(len(self._ids), dtype=np.int64) if self._rows is None else self._rows
        if not self._recent:
            return self._ids, rows
        changed, new_rows = self._recent_arrays()
        keep = ~np.isin(self._ids, changed)
        live = new_rows != _GONE
        ids = np.concatenate([self._ids[keep], changed[live]])
        rows = np.concatenate([rows[keep], new_rows[live]])
        order = np.argsort(ids, kind="stable")
        return ids[order], rows[order]

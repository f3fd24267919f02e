"""Row-aligned columns that grow by doubling: ids, liveness, filter attributes, and their dictionaries."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from index.filters import ItemAttributes, SearchFilter


class GrowableArray:
    """A NumPy array with amortised O(1) append; `view` is the filled part (no copy)."""

    def __init__(self, dtype: np.dtype | type, tail_shape: tuple[int, ...] = (), initial: np.ndarray | None = None):
        self._tail = tail_shape
        data = np.asarray(initial, dtype=dtype) if initial is not None else np.empty((0, *tail_shape), dtype)
        self._data = np.empty((max(len(data), 1024), *tail_shape), dtype=dtype)
        self._data[: len(data)] = data
        self._size = len(data)

    def __len__(self) -> int:
        return self._size

    @property
    def view(self) -> np.ndarray:
        return self._data[: self._size]

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=self._data.dtype)
        needed = self._size + len(values)
        if needed > len(self._data):
            grown = np.empty((max(needed, 2 * len(self._data)), *self._tail), dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : needed] = values
        self._size = needed


class Dictionary:
    """String ↔ small-integer codes, so attribute filters compare integers, not strings."""

    def __init__(self, names: Sequence[str] = ()) -> None:
        self.names: list[str] = list(names)
        self._codes = {name: code for code, name in enumerate(self.names)}

    def encode(self, name: str) -> int:
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.names)
            self.names.append(name)
        return code

    def codes_of(self, names: frozenset[str]) -> np.ndarray:
        """Codes of the names that exist; unknown names match nothing."""
        return np.asarray([self._codes[n] for n in names if n in self._codes], dtype=np.int32)


def attribute_codes(
    attributes: Sequence[ItemAttributes], categories: Dictionary, vendors: Dictionary
) -> dict[str, np.ndarray]:
    """The filter columns of `attributes` (price, category, vendor, in_stock), names encoded by the
    dictionaries (a new name gets the next code): one encoding for an index in memory and for one
    streamed to disk, so both read back the same."""
    count = len(attributes)
    return {
        "price": np.fromiter((a.price for a in attributes), np.float32, count),
        "category": np.fromiter((categories.encode(a.category) for a in attributes), np.int32, count),
        "vendor": np.fromiter((vendors.encode(a.vendor) for a in attributes), np.int32, count),
        "in_stock": np.fromiter((a.in_stock for a in attributes), np.bool_, count),
    }


class AttributeColumns:
    """Filter attributes of every row, columnar, so a filter is a few vectorised comparisons."""

    def __init__(self) -> None:
        self.price = GrowableArray(np.float32)
        self.category = GrowableArray(np.int32)
        self.vendor = GrowableArray(np.int32)
        self.in_stock = GrowableArray(np.bool_)
        self.categories = Dictionary()
        self.vendors = Dictionary()

    def extend(self, attributes: Sequence[ItemAttributes] | None, count: int) -> None:
        attributes = attributes if attributes is not None else [ItemAttributes()] * count
        if len(attributes) != count:
            raise ValueError(f"got {len(attributes)} attribute rows for {count} vectors")
        codes = attribute_codes(attributes, self.categories, self.vendors)
        self.price.extend(codes["price"])
        self.category.extend(codes["category"])
        self.vendor.extend(codes["vendor"])
        self.in_stock.extend(codes["in_stock"])

    def row(self, row: int) -> ItemAttributes:
        return ItemAttributes(
            price=float(self.price.view[row]),
            category=self.categories.names[self.category.view[row]],
            vendor=self.vendors.names[self.vendor.view[row]],
            in_stock=bool(self.in_stock.view[row]),
        )

    def mask(self, search_filter: SearchFilter) -> np.ndarray:
        """Boolean mask over rows for the attribute conditions (not liveness, not exclusions)."""
        keep = np.ones(len(self.price), dtype=bool)
        price = self.price.view
        if search_filter.min_price is not None:
            keep &= price >= search_filter.min_price  # NaN compares False: unknown prices drop out
        if search_filter.max_price is not None:
            keep &= price <= search_filter.max_price
        if search_filter.categories is not None:
            keep &= np.isin(self.category.view, self.categories.codes_of(search_filter.categories))
        if search_filter.vendors is not None:
            keep &= np.isin(self.vendor.view, self.vendors.codes_of(search_filter.vendors))
        if search_filter.in_stock is not None:
            keep &= self.in_stock.view == search_filter.in_stock
        return keep


class VectorRows:
    """Row-aligned float32 vectors: an optional read-only base (a saved index, memory-mapped, so a
    loaded index costs no RAM for its vectors until rows are touched) plus a growing tail, in
    memory or, when `spill_path` is given, in a file (for catalogs whose vectors exceed the budget)."""

    def __init__(self, dim: int, base: np.ndarray | None = None, spill_path: Path | None = None) -> None:
        self.dim = dim
        base = base if base is not None else np.empty((0, dim), np.float32)
        # FAISS reads the rows in place (`parts`); a saved base, loaded as float32 C order, passes as is.
        self._base = (
            base if base.dtype == np.float32 and base.flags.c_contiguous else np.ascontiguousarray(base, np.float32)
        )
        self._tail = GrowableArray(np.float32, (dim,)) if spill_path is None else _FileRows(dim, spill_path)

    def __len__(self) -> int:
        return len(self._base) + len(self._tail)

    def extend(self, vectors: np.ndarray) -> None:
        self._tail.extend(vectors)

    def close(self) -> None:
        """Release the spill file, if any (the rows it held become unreadable)."""
        if isinstance(self._tail, _FileRows):
            self._tail.close()

    def parts(self) -> list[tuple[int, np.ndarray]]:
        """(first row, rows) of each non-empty part, base then tail: C-contiguous float32 arrays, in
        memory or memory-mapped, that FAISS can read in place (see `index.exact`)."""
        parts = ((0, self._base), (len(self._base), self._tail.view))
        return [(first, rows) for first, rows in parts if len(rows)]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of arbitrary rows (any shape of row array), as a new in-memory array."""
        rows = np.asarray(rows, dtype=np.int64)
        flat = rows.reshape(-1)
        split = len(self._base)
        if split == 0:
            out = self._tail.view[flat]
        elif (flat < split).all():
            out = self._base[flat]
        else:
            out = np.empty((len(flat), self.dim), np.float32)
            in_base = flat < split
            out[in_base] = self._base[flat[in_base]]
            out[~in_base] = self._tail.view[flat[~in_base] - split]
        return np.asarray(out, dtype=np.float32).reshape(*rows.shape, self.dim)

    def slice(self, start: int, stop: int | None = None) -> np.ndarray:
        stop = len(self) if stop is None else stop
        return self.take(np.arange(start, stop))

    def chunks(self, size: int = 65536) -> Iterator[np.ndarray]:
        """Consecutive blocks, for saving and scanning without one big copy.

        A base memory-mapped whole from its file is read with plain reads instead: streaming a large
        saved index into a new version then leaves none of its pages mapped into this process."""
        first_tail_row = 0
        if _whole_file_map(self._base):
            base = self._base
            with open(base.filename, "rb") as handle:  # type: ignore[union-attr]
                handle.seek(base.offset)  # type: ignore[union-attr]
                for start in range(0, len(base), size):
                    rows = min(size, len(base) - start)
                    yield np.fromfile(handle, np.float32, rows * self.dim).reshape(rows, self.dim)
            first_tail_row = len(base)
        for start in range(first_tail_row, len(self), size):
            yield self.slice(start, min(start + size, len(self)))


def _whole_file_map(array: np.ndarray) -> bool:
    """Whether `array` is a float32 memory map of a whole file's data (what `np.load(mmap_mode=...)` gives)."""
    if not isinstance(array, np.memmap) or array.filename is None or not len(array):
        return False
    try:
        size = os.path.getsize(array.filename)
    except OSError:
        return False
    return array.dtype == np.float32 and array.flags.c_contiguous and size == array.offset + array.nbytes


class _FileRows:
    """An append-only float32 matrix in a file, read through a memory map refreshed as it grows."""

    def __init__(self, dim: int, path: Path) -> None:
        self.dim = dim
        self.path = path
        self._handle = path.open("wb+")
        self._size = 0
        self._map: np.ndarray | None = None
        self._map_lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def close(self) -> None:
        self._handle.close()
        self._map = None

    def extend(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.float32)
        self._handle.write(values.tobytes())
        self._handle.flush()
        self._size += len(values)

    @property
    def view(self) -> np.ndarray:
        with self._map_lock:
            if self._map is None or len(self._map) != self._size:
                self._map = (
                    np.memmap(self.path, np.float32, "r", shape=(self._size, self.dim))
                    if self._size
                    else (np.empty((0, self.dim), np.float32))
                )
            return self._map

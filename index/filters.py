"""Search filters: the few product attributes a query may constrain, ids to leave out, and an
allow-list of id keys (`AllowList`) for conditions the index cannot know (e.g. "in stock nearby")."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class AllowList:
    """Only items whose key is listed may be returned; key = `(id >> shift) & (2**bits - 1)`.

    Why keys and not ids: the caller often knows groups of vectors (a product owns several image
    vectors), not the vectors themselves, and the index must stay ignorant of what a group is. With
    the defaults the key is the id itself. The index turns the list into a row mask inside the
    search (`VectorIndex`), so a restricted search still returns full pages: no post-filtering.

    Two shapes: `of(keys)`, any keys; or `subset(universe, chosen)`, for callers that ask about
    subsets of one fixed key set many times (the stock map's products): `universe` is that set
    (sorted, unique, the same array object each time) and `chosen` a boolean mask over it. The index
    maps a universe to its own rows once per index version, so such a query costs one gather over
    the rows, and `keys` (`universe[chosen]`) is only built when someone reads it."""

    listed: np.ndarray | None  # sorted, unique int64 keys; None for a subset (see `keys`)
    shift: int = 0
    bits: int = 63
    universe: np.ndarray | None = None
    chosen: np.ndarray | None = None

    @classmethod
    def subset(cls, universe: np.ndarray, chosen: np.ndarray, shift: int = 0, bits: int = 63) -> AllowList:
        """The keys of `universe` (sorted, unique int64) where `chosen` is True."""
        if len(universe) != len(chosen):
            raise ValueError(f"chosen has {len(chosen)} entries for a universe of {len(universe)} keys")
        _check_key_layout(shift, bits)
        return cls(None, shift, bits, universe, np.asarray(chosen, dtype=bool))

    @classmethod
    def of(cls, keys: Iterable[int] | np.ndarray, shift: int = 0, bits: int = 63) -> AllowList:
        _check_key_layout(shift, bits)
        array = keys if isinstance(keys, np.ndarray) else np.fromiter((int(k) for k in keys), np.int64)
        return cls(np.unique(np.asarray(array, dtype=np.int64)), shift, bits)

    @cached_property
    def keys(self) -> np.ndarray:
        """The allowed keys, sorted and unique."""
        if self.listed is not None:
            return self.listed
        assert self.universe is not None and self.chosen is not None
        return self.universe[self.chosen]

    def key_of(self, ids: np.ndarray) -> np.ndarray:
        """The key of each id, as the allow-list compares them."""
        return (np.asarray(ids, dtype=np.int64) >> self.shift) & np.int64((1 << self.bits) - 1)

    def __len__(self) -> int:
        if self.listed is not None:
            return len(self.listed)
        return int(np.count_nonzero(self.chosen))


def _check_key_layout(shift: int, bits: int) -> None:
    if not 0 <= shift < 63 or not 1 <= bits <= 63:
        raise ValueError(f"shift must be 0..62 and bits 1..63, not {shift} and {bits}")


@dataclass(frozen=True)
class SearchFilter:
    """All given conditions must hold. `None` means "any"; an empty filter matches everything."""

    min_price: float | None = None
    max_price: float | None = None
    categories: frozenset[str] | None = None
    vendors: frozenset[str] | None = None
    in_stock: bool | None = None
    exclude_ids: frozenset[int] = field(default_factory=frozenset)
    allow: AllowList | None = None  # None: any id; an empty list allows nothing

    @classmethod
    def of(
        cls,
        min_price: float | None = None,
        max_price: float | None = None,
        categories: Iterable[str] | None = None,
        vendors: Iterable[str] | None = None,
        in_stock: bool | None = None,
        exclude_ids: Iterable[int] = (),
    ) -> SearchFilter:
        """Build from any iterables (lists from JSON, sets, generators)."""
        return cls(
            min_price=min_price,
            max_price=max_price,
            categories=frozenset(categories) if categories is not None else None,
            vendors=frozenset(vendors) if vendors is not None else None,
            in_stock=in_stock,
            exclude_ids=frozenset(int(i) for i in exclude_ids),
        )

    def __post_init__(self) -> None:
        for name in ("min_price", "max_price"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is above max_price {self.max_price}")

    @property
    def constrains_attributes(self) -> bool:
        return any(
            value is not None
            for value in (self.min_price, self.max_price, self.categories, self.vendors, self.in_stock)
        )

    @property
    def is_empty(self) -> bool:
        return not self.constrains_attributes and not self.exclude_ids and self.allow is None


@dataclass(frozen=True)
class ItemAttributes:
    """What filters can see of one indexed item. NaN price means unknown (excluded by price filters)."""

    price: float = math.nan
    category: str = ""
    vendor: str = ""
    in_stock: bool = True

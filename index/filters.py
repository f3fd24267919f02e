"""Search filters: the few product attributes a query may constrain, plus ids to leave out."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SearchFilter:
    """All given conditions must hold. `None` means "any"; an empty filter matches everything."""

    min_price: float | None = None
    max_price: float | None = None
    categories: frozenset[str] | None = None
    vendors: frozenset[str] | None = None
    in_stock: bool | None = None
    exclude_ids: frozenset[int] = field(default_factory=frozenset)

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
        return not self.constrains_attributes and not self.exclude_ids


@dataclass(frozen=True)
class ItemAttributes:
    """What filters can see of one indexed item. NaN price means unknown (excluded by price filters)."""

    price: float = math.nan
    category: str = ""
    vendor: str = ""
    in_stock: bool = True

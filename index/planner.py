"""Choose the index kind from the catalog size and a memory budget, and say why."""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.engines import EngineSpec, default_nlist

#: Below this many vectors an exact scan answers in about a millisecond: no approximation needed.
FLAT_MAX = 50_000
#: Bookkeeping per row besides the vectors: id, liveness, price, category, vendor, stock, id map.
ROW_OVERHEAD_BYTES = 38

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(text: str) -> int:
    """'2GB', '512 MiB', '1.5gb' → bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).upper() not in _UNITS:
        raise ValueError(f"cannot read {text!r} as a size; write e.g. 2GB, 512MB or 4GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


@dataclass(frozen=True)
class IndexPlan:
    spec: EngineSpec
    vectors_in_memory: bool
    estimated_bytes: int
    reason: str

    def to_json(self) -> dict:
        return {
            "index_type": self.spec.kind,
            "engine": self.spec.to_json(),
            "vectors_in_memory": self.vectors_in_memory,
            "estimated_mb": round(self.estimated_bytes / 1e6, 1),
            "reason": self.reason,
        }


def plan_index(count: int, dim: int, memory_budget: int) -> IndexPlan:
    """Exact for small catalogs; inverted file with 8-bit codes plus exact re-ranking when it fits;
    product quantisation when even 8-bit codes do not fit the budget."""
    floats = count * dim * 4
    overhead = count * ROW_OVERHEAD_BYTES
    if count <= FLAT_MAX:
        needed = 2 * floats + overhead
        return IndexPlan(
            EngineSpec("flat"),
            True,
            needed,
            f"{count:,} vectors: an exact scan takes about a millisecond, so no approximation (flat).",
        )
    nlist = default_nlist(count)
    sq8 = count * (dim + 8) + overhead
    budget_text = f"{memory_budget / 1e9:.1f} GB"
    if sq8 + floats <= memory_budget:
        return IndexPlan(
            EngineSpec("ivf-sq8", nlist=nlist),
            True,
            sq8 + floats,
            f"{count:,} vectors: inverted file with {nlist} lists and 8-bit codes ({sq8 / 1e6:,.0f} MB), "
            f"candidates re-ranked with exact vectors held in memory ({floats / 1e6:,.0f} MB); "
            f"{(sq8 + floats) / 1e6:,.0f} MB fits the {budget_text} budget.",
        )
    if sq8 <= memory_budget:
        return IndexPlan(
            EngineSpec("ivf-sq8", nlist=nlist),
            False,
            sq8,
            f"{count:,} vectors: exact vectors ({floats / 1e6:,.0f} MB) exceed the {budget_text} budget, so they "
            f"stay on disk (memory-mapped, only re-ranked rows are read); 8-bit codes in {nlist} lists "
            f"({sq8 / 1e6:,.0f} MB) fit in memory.",
        )
    for pq_m in (64, 32, 16, 8):
        if dim % pq_m == 0:
            pq = count * (pq_m + 8) + overhead
            if pq <= memory_budget:
                return IndexPlan(
                    EngineSpec("ivf-pq", nlist=nlist, pq_m=pq_m, rerank_factor=8),
                    False,
                    pq,
                    f"{count:,} vectors: even 8-bit codes ({sq8 / 1e6:,.0f} MB) exceed the {budget_text} budget; "
                    f"product quantisation to {pq_m} bytes per vector ({pq / 1e6:,.0f} MB), exact vectors on "
                    "disk for re-ranking.",
                )
    raise ValueError(f"{count:,} vectors of dimension {dim} do not fit in {budget_text}; raise --memory-budget")

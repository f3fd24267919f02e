"""Peak memory of `vitrine ingest` follows the batch, not the catalog.

The same command ingests 3,000 and then 9,000 rows (small distinct photos, so a batch's own memory
is small) in child processes, and their peak resident memory is compared. Anything kept per row —
photo bytes (about 2.5 KB a row here), decoded pixels, vectors as Python objects, ORM objects —
adds up over the 6,000 extra rows and breaks the bound.

The bound cannot be tight: the larger run also ends higher for reasons that stop growing (SQLite's
page caches fill up to their cap as the database grows; the CSV reader's 1 MB block is fuller) and
a little bookkeeping is kept per row (about 60 bytes: where each id's latest vector lives, the
skus seen): measured 5.3 to 8 MB here. Growth of a few hundred bytes a row (for instance this
model's 64-d vectors as float16, 128 bytes a row) is below what the test can tell from that, so it
guards against leaks of a kilobyte-plus a row, not against every byte. With ~1200x1200 photos
`vitrine bench ingest --model test-tiny` peaks at 265.6 MB for 10,000 rows and 266.0 MB for 50,000.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from catalogs import product_photo

from benchmarks.ingest import ingest_in_child

SMALL, LARGE = 3_000, 9_000
#: Peak growth allowed for 6,000 more rows: about 3.3 KB a row, against a measured 5.3-8 MB.
GROWTH_BOUND_MB = 20.0


def _catalog(folder: Path, rows: int) -> Path:
    path = folder / f"catalog-{rows}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "title", "price", "currency", "image", "category"])
        for i in range(rows):
            writer.writerow([f"M{i:06d}", f"Memory product {i}", f"{1 + i % 90}.50", "EUR", f"photos/{i:06d}.jpg", "c"])
    return path


def test_peak_memory_does_not_grow_with_the_row_count(tmp_path: Path, tiny):
    directory, _manifest = tiny
    (tmp_path / "photos").mkdir()
    for i in range(LARGE):
        (tmp_path / "photos" / f"{i:06d}.jpg").write_bytes(product_photo(100_000 + i, size=96))
    peaks = {}
    for rows in (SMALL, LARGE):
        scratch = tmp_path / f"run-{rows}"
        scratch.mkdir()
        child = ingest_in_child(_catalog(tmp_path, rows), "memory", directory, scratch / "home", scratch)
        assert child.summary["accepted"] == rows and child.summary["rejected"] == 0
        peaks[rows] = child.peak_rss_mb
    print({"peak_mb": peaks})
    assert peaks[SMALL] > 50  # a real measurement, not an empty one
    assert peaks[LARGE] - peaks[SMALL] < GROWTH_BOUND_MB, peaks


def test_an_ingest_process_gives_arrow_the_system_allocator():
    """Arrow's default (mimalloc) held memory in proportion to the CSV file; an ingest process must
    switch before pyarrow loads, and the switch must not itself load pyarrow too early."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from catalog_ingest.memory import tune_allocator_for_batches\n"
        "assert 'pyarrow' not in sys.modules\n"
        "tune_allocator_for_batches()\n"
        "import pyarrow\n"
        "print(pyarrow.default_memory_pool().backend_name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "system"

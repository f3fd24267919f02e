"""Where the shared real data lives (`../shared/data` beside the repository) and what happens without it.

A clone of the project alone has no such folder: tests that need it are skipped, each saying which
folder is missing. CI sets VITRINE_REQUIRE_SHARED_DATA=1, which turns those skips into failures, so a
missing data set can never pass there unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()
FLIPKART = SHARED_DATA / "flipkart-sample"
GROCERY = SHARED_DATA / "grocery-store"
REQUIRE_VARIABLE = "VITRINE_REQUIRE_SHARED_DATA"


def require(folder: Path) -> Path:
    """`folder` when it holds files; otherwise skip the test (fail it when CI requires the data)."""
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    reason = f"the shared test data is missing: {folder} (it lives beside the repository, in ../shared/data)"
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 requires it")
    pytest.skip(reason)

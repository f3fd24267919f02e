"""What the browser tests need besides the web test server: a catalog with real product photos,
Debian's Chromium driven by Playwright, and full-page screenshots kept as test artifacts.

Chromium is the system one (/usr/bin/chromium, or $VITRINE_CHROMIUM): Playwright's own browser
download is never used, so the tests run offline.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

from shared_data import FLIPKART, REPO_ROOT, require
from webapp import build_catalog

from catalog.workspace import Workspace
from catalog_ingest.ingest import IngestOptions, ingest_catalog
from catalog_ingest.mapping import ColumnMapping

ROOT = REPO_ROOT
FLIPKART_MAPPING = ROOT / "catalog_ingest" / "mappings" / "flipkart.toml"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str | None:
    """The system Chromium, or None when this machine has none (the browser tests are then skipped)."""
    for candidate in (os.environ.get("VITRINE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def screenshot_dir() -> Path:
    """Where screenshots go: $VITRINE_SCREENSHOTS, else artifacts/screenshots (git-ignored)."""
    folder = Path(os.environ.get("VITRINE_SCREENSHOTS") or ROOT / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page, name: str, accessible: bool = True) -> Path:  # type: ignore[no-untyped-def]
    """A full-page PNG of what the browser shows now: <folder>/<test name>/<step>.png. Every page
    a browser test photographs is also checked with axe-core (see `assert_accessible`)."""
    if accessible:
        assert_accessible(page, name)
    current = os.environ.get("PYTEST_CURRENT_TEST", "outside-pytest").split("::")[-1].split(" ")[0]
    folder = screenshot_dir() / re.sub(r"[^A-Za-z0-9_-]+", "-", current)
    folder.mkdir(exist_ok=True)
    path = folder / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def watch_rows(count: int, max_bytes: int = 120_000) -> list[dict[str, str]]:
    """The first `count` watches of the Flipkart sample whose photo is on disk and small (fast to embed)."""
    require(FLIPKART)
    with (FLIPKART / "flipkart_com-ecommerce_sample_1050.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    chosen = []
    for row in rows:
        photo = FLIPKART / "images" / row["image"]
        if "Watches" in row["product_category_tree"] and photo.is_file() and photo.stat().st_size <= max_bytes:
            chosen.append(row)
        if len(chosen) == count:
            break
    return chosen


def build_browser_catalog(folder: Path, embedder, watches: int = 24) -> tuple[Workspace, list[dict[str, str]]]:  # type: ignore[no-untyped-def]
    """The web tests' two synthetic vendors (one product titled with a script tag) plus a vendor of real
    watches from the Flipkart sample, ingested through its column mapping; returns the watch rows too."""
    workspace = build_catalog(folder, embedder)
    rows = watch_rows(watches)
    shop = folder / "flipkart"
    shop.mkdir()
    (shop / "images").mkdir()
    for row in rows:
        shutil.copyfile(FLIPKART / "images" / row["image"], shop / "images" / row["image"])
    with (shop / "catalog.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    options = IngestOptions(mapping=ColumnMapping.load(FLIPKART_MAPPING))
    summary = ingest_catalog(shop / "catalog.csv", "flipkart", embedder, workspace, options)
    assert summary.accepted == len(rows), summary.to_json()
    return workspace, rows


#: axe-core impacts that fail a test; "moderate" and "minor" findings are printed, not fatal.
FATAL_IMPACTS = {"serious", "critical"}


def accessibility_violations(page, skip_rules: tuple[str, ...] = ()) -> list[dict]:  # type: ignore[no-untyped-def]
    """axe-core's violations on the page as it is now (axe is injected by the test driver, outside
    the page's Content-Security-Policy, and sends nothing anywhere)."""
    from axe_playwright_python.sync_playwright import Axe

    options: dict = {"resultTypes": ["violations"]}
    if skip_rules:
        options["rules"] = {rule: {"enabled": False} for rule in skip_rules}
    return Axe().run(page, options=options).response["violations"]


def assert_accessible(page, name: str, skip_rules: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
    """Fail on any serious or critical axe-core violation, naming the rule and the elements.
    `skip_rules` is for markup that is not ours (say why where it is used)."""
    violations = accessibility_violations(page, skip_rules)
    fatal = [v for v in violations if v.get("impact") in FATAL_IMPACTS]
    for violation in violations:
        if violation not in fatal:
            print(f"axe ({name}): {violation['impact']} {violation['id']}: {violation['help']}")
    lines = [
        f"{v['impact']} {v['id']}: {v['help']} -> " + "; ".join(n["target"][0] for n in v["nodes"][:5]) for v in fatal
    ]
    assert not fatal, f"axe-core on {name!r} ({page.url}):\n" + "\n".join(lines)

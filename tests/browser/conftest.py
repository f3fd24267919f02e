"""What the browser tests share: a site over a small catalog (each module gets its own, with its own
data folder) and one Chromium per module. A module that needs another site defines its own `site`."""

from __future__ import annotations

import pytest
from browser_support import CHROMIUM_ARGS, chromium_path
from webapp import build_catalog, start_site

from vision.embedder import open_embedder


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    """A running site over the small test catalog; rate limits off (browser journeys sign in and post
    quickly from one address; the limits have their own tests)."""
    workspace = build_catalog(tmp_path_factory.mktemp("browser-catalog"), open_embedder("test-tiny", "onnx", store))
    site, server = start_site(workspace, rate_limits="off")
    yield site
    server.stop()


@pytest.fixture(scope="module")
def chromium():
    """The system Chromium, driven by Playwright (skipped where the machine has none)."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no system Chromium (set VITRINE_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()

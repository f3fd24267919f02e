"""What the browser tests share: a site over a small catalog (each module gets its own, with its own
data folder) and one Chromium per module. A module that needs another site defines its own `site`."""

from __future__ import annotations

import pytest
from browser_support import CHROMIUM_ARGS, VIEWPORT, chromium_path
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


@pytest.fixture
def open_page(chromium):
    """A factory of fresh pages, one browser context (own cookies) each. Any JavaScript dialog or
    uncaught page error fails the test: the pages must never run injected code or crash."""
    contexts, dialogs, errors = [], [], []

    def make():  # type: ignore[no-untyped-def]
        context = chromium.new_context(viewport=VIEWPORT)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert dialogs == [], f"a JavaScript dialog fired: {dialogs}"
    assert errors == [], f"the page raised: {errors}"

"""The API docs page works on a machine with no internet: Swagger UI comes from the installed
package, is started by the site's own script under its Content-Security-Policy, and lists the JSON
API's operations from /schema/openapi.json. Every request the page makes stays on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_support import CHROMIUM_ARGS, VIEWPORT, chromium_path, shot
from webapp import build_catalog, start_site

from vision.embedder import open_embedder

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (set VITRINE_CHROMIUM)")


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    workspace = build_catalog(tmp_path_factory.mktemp("docs-catalog"), open_embedder("test-tiny", "onnx", store))
    site, server = start_site(workspace)
    yield site
    server.stop()


def test_the_docs_page_shows_every_operation_without_leaving_the_site(site):
    schema = site.client().get("/schema/openapi.json").json()
    operations = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert ("POST", "/api/search") in operations
    requested, problems = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.on("request", lambda request: requested.append(request.url))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.goto(site.url + "/docs")
        page.locator(".swagger-ui .opblock").first.wait_for(timeout=20_000)
        shown = page.locator(".swagger-ui .opblock").count()
        title = page.locator(".swagger-ui .info .title").inner_text()
        shot(page, "api docs")
        browser.close()
    assert "Vitrine" in title
    assert shown == len(operations), f"the viewer shows {shown} operations, the document has {len(operations)}"
    own = urlsplit(site.url).netloc
    assert all(urlsplit(url).netloc == own for url in requested if not url.startswith("data:")), requested
    assert not problems, problems  # a CSP refusal or a script error shows up here


def test_only_the_viewer_files_are_served(site):
    client = site.client()
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in script.text[:200_000]
    for name in ("index.html", "swagger-initializer.js", "..%2Fswagger-ui.css", "swagger-ui.js.map"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name

"""The API docs page works on a machine with no internet: Swagger UI comes from the installed
package, is started by the site's own script under its Content-Security-Policy, and lists the JSON
API's operations from /schema/openapi.json. Every request the page makes stays on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

from browser_support import VIEWPORT, assert_accessible, shot


def test_the_docs_page_shows_every_operation_without_leaving_the_site(site, chromium):
    schema = site.client().get("/schema/openapi.json").json()
    operations = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert ("POST", "/api/search") in operations
    requested, problems = [], []
    page = chromium.new_page(viewport=VIEWPORT)
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(site.url + "/docs")
    page.locator(".swagger-ui .opblock").first.wait_for(timeout=20_000)
    shown = page.locator(".swagger-ui .opblock").count()
    title = page.locator(".swagger-ui .info .title").inner_text()
    # Swagger UI nests its "copy"/"expand" buttons inside each operation's summary button: its own
    # markup, which we cannot change from outside. Every other axe-core rule applies.
    assert_accessible(page, "api docs", skip_rules=("nested-interactive",))
    shot(page, "api docs", accessible=False)
    page.close()
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

"""The API's documentation page at /docs: Swagger UI 5 (it reads OpenAPI 3.1, which Litestar writes)
from the `swagger-ui-py` package installed with the project, so the docs read the same on a machine
with no internet (the viewers Litestar ships load their scripts from a CDN and stay blank offline).

The page is this site's own HTML with no inline script (the site's Content-Security-Policy allows
none): the viewer is started by /static/api-docs.js, which points it at /schema/openapi.json.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import Controller, MediaType, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Template


def _viewer_folder() -> Path:
    """The package's static folder, found without importing it (its __init__ wires up web frameworks)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The API docs viewer is missing: pip install swagger-ui-py")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


FOLDER = _viewer_folder()
#: Only what the page loads; the bundle's own index.html and initializer (which point at a demo API) stay out.
SERVED = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


class DocsController(Controller):
    path = "/docs"
    include_in_schema = False

    @get("/", media_type=MediaType.HTML, sync_to_thread=False)
    def docs(self) -> Template:
        return Template(template_name="api_docs.html", context={"assets": "/docs/assets"})

    @get("/assets/{name:str}", sync_to_thread=False)
    def asset(self, name: FromPath[str]) -> File:
        if name not in SERVED:
            raise NotFoundException(f"No documentation asset named {name!r}.")
        return File(
            path=FOLDER / name,
            media_type=SERVED[name],
            content_disposition_type="inline",
            headers={"cache-control": "public, max-age=86400"},
        )

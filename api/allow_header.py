"""`Allow` on the automatic OPTIONS answer names every method of the path.

Litestar 2 builds that answer when the first handler of a path is registered, and a second handler on
the same path (`POST` and `DELETE /api/staff/token`) does not update it, so `Allow` named only the first
method (litestar-org/litestar#4169, fixed in Litestar 3 only). This `before_send` hook writes `Allow`
from the route the request matched, whose method list is complete; Schemathesis' `allow_header_conformance`
check (tests/api/test_schemathesis.py) holds the app to it.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

STATE_KEY = "allow_header_methods"


async def allow_every_method(message: Message, scope: Scope) -> None:
    """The hook: on a successful OPTIONS answer, `Allow` lists the methods of the matched route."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS" or message["status"] >= 300:
        return
    template = scope.get("path_template")
    app = scope.get("app")
    if template is None or app is None:
        return
    methods = _methods_by_path(app).get(template)
    if methods:
        MutableScopeHeaders.from_message(message)["allow"] = ", ".join(sorted(methods))


def _methods_by_path(app: Litestar) -> dict[str, set[str]]:
    """Each HTTP path's methods, worked out once per app (kept in its state: routes do not change once it runs)."""
    found = app.state.get(STATE_KEY)
    if found is None:
        found = {}
        for route in app.routes:
            if isinstance(route, HTTPRoute):
                found.setdefault(route.path_format, set()).update(route.methods)
        app.state[STATE_KEY] = found
    return found

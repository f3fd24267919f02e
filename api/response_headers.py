"""Headers every response gets, error pages and 404s included: the security headers, and `no-store`
unless the response says it may be cached.

A `before_send` hook, because it sees every response the app sends (an `after_request` hook misses
the error pages made by exception handlers) and the request's path.

Almost every page here is someone's: a customer's request (its address is the key), a staff page,
an applicant's form. A shared cache or the browser's disk must not keep them, so every response that
set no `Cache-Control` of its own gets `no-store`. The exceptions set their own: catalog images
(public, immutable); the static files under /static/ keep the browser's usual caching. Defaulting to
no-store means a new private page cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

NO_STORE = "no-store"
#: Paths whose responses keep the browser's usual caching (nothing personal is under them).
CACHEABLE_PREFIXES = ("/static/",)


def response_headers(security: Mapping[str, str]) -> Callable[[Message, Scope], Awaitable[None]]:
    """The hook: `security` headers where a response has not set them, and `no-store` by default."""

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in security.items():
            if name not in headers:
                headers[name] = value
        if "cache-control" not in headers and not scope.get("path", "").startswith(CACHEABLE_PREFIXES):
            headers["cache-control"] = NO_STORE

    return hook

"""Which Host headers the app answers, and the base of every link it writes.

Links in pages, API answers and e-mails come from `Settings.public_url` (`VITRINE_PUBLIC_URL`), never
from the request: `Host: evil.example` once put `http://evil.example/r/<token>` into the customer's
e-mail. Requests naming a host outside `Settings.trusted_hosts()` are refused (400) before any
handler runs. Litestar's `AllowedHostsConfig` compares the whole header, port included, so
`127.0.0.1:8000` never matched `127.0.0.1`; this check compares the host name alone.
`/api/health` answers any host (load balancers probe by address, and it writes no links).
"""

from __future__ import annotations

import re

from litestar import Request
from litestar.datastructures import Headers
from litestar.middleware import ASGIMiddleware
from litestar.response.base import ASGIResponse
from litestar.serialization import encode_json
from litestar.types import ASGIApp, Receive, Scope, Send

from workflow.settings import DEFAULT_PUBLIC_URL, LOCAL_HOSTS, Settings

_PORT = re.compile(r":\d*$")


def host_name(header: str) -> str:
    """The host of a Host header, lower-case, without its port (`[::1]:8000` → `::1`)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return _PORT.sub("", header).rstrip(".")


def host_allowed(host: str, allowed: list[str]) -> bool:
    """`host` is one of `allowed`, or under a `*.domain` entry; `*` allows any."""
    for pattern in allowed:
        pattern = pattern.strip().lower()
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class AllowedHostsMiddleware(ASGIMiddleware):
    """400 for a request whose Host header is not one of the app's own names."""

    scopes = ("http",)  # type: ignore[assignment]

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:
        return scope["path"].startswith("/api/health")

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if "*" in self.allowed:
            await next_app(scope, receive, send)
            return
        host = host_name(Headers.from_scope(scope).get("host", ""))
        if host and host_allowed(host, self.allowed):
            await next_app(scope, receive, send)
            return
        body = {
            "status_code": 400,
            "error": "Unknown host",
            "detail": f"This server does not answer for the host {host[:100]!r}.",
            "hint": "Use the site's own address (VITRINE_ALLOWED_HOSTS lists the names it answers for).",
        }
        response = ASGIResponse(body=encode_json(body), status_code=400, media_type="application/json")
        await response(scope, receive, send)


def public_base(request: Request) -> str:
    """The base of links: the configured public URL. An app made in code without one (tests) uses the
    request's own base when it names this machine, else `DEFAULT_PUBLIC_URL`: never a foreign Host."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    if settings is not None and settings.public_url:
        return settings.public_url.rstrip("/")
    if host_name(request.headers.get("host", "")) in LOCAL_HOSTS:
        return str(request.base_url).rstrip("/")
    return DEFAULT_PUBLIC_URL

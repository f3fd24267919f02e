"""A request id per HTTP request: on every log line written while handling it and in the response.

The id comes from the client's (or the proxy's) `X-Request-ID` when that is a sane token (so one id
follows a request through a proxy and several workers), else a fresh random one. It is echoed in the
response's `X-Request-ID` header, so a customer's "it failed" can be matched to the server's log.
A header value that could forge or break log lines (spaces, quotes, newlines, 128+ characters) is
replaced, never logged.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

#: The id of the request being handled in this context; "-" outside a request.
REQUEST_ID: ContextVar[str] = ContextVar("vitrine_request_id", default="-")


def current_request_id() -> str:
    return REQUEST_ID.get()


def choose_request_id(given: str | None) -> str:
    """`given` when it is a sane token, else a new random id (32 hex digits)."""
    if given is not None and _SANE.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestIdMiddleware(ASGIMiddleware):
    """Sets `REQUEST_ID` for the request and adds `X-Request-ID` to its response."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        given = next((value.decode("latin-1") for name, value in scope["headers"] if name == HEADER.encode()), None)
        request_id = choose_request_id(given)
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record (the current request's, or "-"), for any formatter to use."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True

"""Clients that send slowly cannot hold a connection open: a bound on the wait for request headers
(in the HTTP protocol, before the app sees anything) and on the wait between body chunks (in the app).

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`) and the size of an incomplete
header block (`h11_max_incomplete_event_size`), but not the time a client takes to send its headers
or its body: a client trickling a byte every few seconds kept a connection and its handler for as
long as it liked. `HeaderTimeoutProtocol` closes a connection whose request headers are not complete
within `header_timeout_s`; `BodyTimeoutMiddleware` answers 408 when the next body chunk takes longer
than `Settings.body_timeout_s`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 16 * 1024


class BodyTimeoutMiddleware(ASGIMiddleware):
    """408 when a request body's next chunk does not arrive within `timeout_s`."""

    scopes = ("http",)  # type: ignore[assignment]

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self.timeout_s <= 0:
            await next_app(scope, receive, send)
            return
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # after the body, receive() waits for a disconnect: no bound on that
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                raise HTTPException(
                    status_code=408,
                    detail=f"The request body stopped arriving (nothing for {self.timeout_s:g} seconds).",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await next_app(scope, timed_receive, send)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers take longer than
    `header_timeout_s` (from the connection's start, or from the end of the previous response)."""

    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_since_cycle:  # the headers arrived: a new request began
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._waiting_since_cycle: Any = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        self._header_timer = None
        self._waiting_since_cycle = self.cycle

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its headers did arrive (a pipelined one, say)
        if not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers took over %ss", self.header_timeout_s)
            self.transport.close()


def uvicorn_options(header_timeout_s: float = HEADER_TIMEOUT_S) -> dict[str, Any]:
    """What `vitrine serve` passes to uvicorn so slow or oversized headers cannot hold a connection."""
    protocol = type("VitrineH11Protocol", (HeaderTimeoutProtocol,), {"header_timeout_s": header_timeout_s})
    return {
        "http": protocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }

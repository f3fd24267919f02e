"""DNS rebinding against the URL fetcher: the address checked is the address connected to.

Two real HTTP servers on one port: a "public" image host on 127.0.0.2 (let through by address, as a
public address would be) and an "internal" one on 127.0.0.1 (refused, as any loopback or private
address is). The DNS is simulated by patching `socket.getaddrinfo` (it is the DNS that lies, not
the code under test): the first answer for the name is the public address, every later one the
internal address, the way a rebinding attacker's name server answers.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest
from catalogs import product_photo

from catalog_ingest.errors import ImageUnavailable
from catalog_ingest.images import FetchPolicy, UrlFetcher

NAME = "images.rebinding.test"
PUBLIC, INTERNAL = "127.0.0.2", "127.0.0.1"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[dict[str, list[tuple[str, str]]]] = {}

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.seen.setdefault(self.server.server_address[0], []).append((self.path, self.headers.get("Host", "")))
        body = product_photo(3) if self.server.server_address[0] == PUBLIC else b"internal secret"
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def servers() -> Iterator[int]:
    """The port both servers listen on."""
    public = http.server.ThreadingHTTPServer((PUBLIC, 0), _Recorder)
    port = public.server_address[1]
    internal = http.server.ThreadingHTTPServer((INTERNAL, port), _Recorder)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (public, internal)]
    for thread in threads:
        thread.start()
    _Recorder.seen.clear()
    yield port
    for server in (public, internal):
        server.shutdown()
        server.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answers for NAME: the public address the first time, the internal one after; the calls made."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != NAME:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = PUBLIC if len(asked) == 1 else INTERNAL
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def _fetcher() -> UrlFetcher:
    return UrlFetcher(FetchPolicy(allow_hosts=frozenset({PUBLIC}), retries=0, timeout_s=2.0, total_timeout_s=4.0))


def test_a_name_that_rebinds_after_the_check_never_reaches_the_internal_host(servers, rebinding_dns) -> None:
    fetcher = _fetcher()
    try:
        body = fetcher.fetch(f"http://{NAME}:{servers}/photo.jpg")
    finally:
        fetcher.close()
    assert INTERNAL not in _Recorder.seen  # not even a GET was sent there
    assert body == product_photo(3)  # it came from the address that was checked
    assert _Recorder.seen[PUBLIC] == [("/photo.jpg", f"{NAME}:{servers}")]  # the name kept in the Host header
    assert rebinding_dns == [NAME]  # resolved once: the connection did not ask the DNS again


def test_an_internal_answer_at_the_check_is_refused_before_any_connection(servers, monkeypatch) -> None:
    real = socket.getaddrinfo

    def internal_only(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != NAME:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC, port)),
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (INTERNAL, port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", internal_only)
    fetcher = _fetcher()
    try:
        with pytest.raises(ImageUnavailable, match=r"non-public address, 127\.0\.0\.1"):
            fetcher.fetch(f"http://{NAME}:{servers}/photo.jpg")
    finally:
        fetcher.close()
    assert _Recorder.seen == {}  # one bad address among the answers: nothing is fetched at all

"""Image references → bytes: files inside the catalog folder, zip members, or http(s) URLs.

Local paths must stay inside the catalog's folder (no absolute paths, no `..`, no symlink that
leads out). URLs go through `UrlFetcher`, which refuses every scheme but http(s) and every
address that is not public (loopback, private, link-local, cloud metadata...). The host is resolved
once, every address it has is checked, and the connection goes to the address that was checked (the
URL's host kept in the Host header and, for https, in TLS's SNI and certificate check): a DNS answer
that changes between the check and the connection (DNS rebinding) cannot send the GET anywhere else.
Each redirect's target is checked the same way before it is fetched.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from catalog_ingest.errors import ImageUnavailable

MAX_IMAGE_BYTES = 25 * 1000 * 1000
_NOT_IMAGES = (b"<!doctype html", b"<html", b"<?xml", b"{", b"[")


@dataclass(frozen=True)
class FetchPolicy:
    """How URLs are fetched. `allow_hosts` lets named hosts or addresses through the address guard
    (tests serve images from 127.0.0.1 this way); nothing else that is not public gets through."""

    timeout_s: float = 10.0  # for each connect and each read
    total_timeout_s: float = 60.0  # for a whole response: a server that drips bytes is cut off
    max_bytes: int = MAX_IMAGE_BYTES
    retries: int = 3
    backoff_s: float = 0.5
    concurrency: int = 8
    max_redirects: int = 5
    allow_hosts: frozenset[str] = field(default_factory=frozenset)


class UrlFetcher:
    """Bounded, retried, SSRF-guarded HTTP GET of one image. Thread-safe; at most `concurrency` at once."""

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(self.policy.timeout_s),
            limits=httpx.Limits(max_connections=self.policy.concurrency),
            headers={"User-Agent": "Vitrine-catalog-ingest/0.1", "Accept": "image/*"},
        )
        self._slots = threading.BoundedSemaphore(self.policy.concurrency)

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str) -> bytes:
        with self._slots:
            for _ in range(self.policy.max_redirects + 1):
                target = self._pinned(url, self._check_url(url))
                response_url, body = self._get_with_retries(url, target)
                if body is None:  # a redirect: check the next hop like the first
                    url = response_url
                    continue
                return _sniffed(url, body)
            raise ImageUnavailable(f"more than {self.policy.max_redirects} redirects ({url})")

    def _check_url(self, url: str) -> str | None:
        """The address to connect to for `url`, every address of its host checked first; None for a
        host allowed by name (connected as usual, whatever it resolves to)."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ImageUnavailable(f"only http and https URLs are fetched ({url})")
        host = parts.hostname
        if not host:
            raise ImageUnavailable(f"no host name ({url})")
        if host in self.policy.allow_hosts:
            return None
        try:
            infos = socket.getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except socket.gaierror:
            raise ImageUnavailable(f"the host {host!r} does not resolve ({url})") from None
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise ImageUnavailable(f"the host {host!r} has no address ({url})")
        for address in addresses:
            self._check_address(url, address)
        return addresses[0]

    @staticmethod
    def _pinned(url: str, address: str | None) -> _Target:
        """The request for `url` sent to `address`: the URL's host moves to the Host header and to the
        TLS server name (SNI and the certificate's check), so only the connection's address changes."""
        if address is None:
            return _Target(url, {}, {})
        parts = urlsplit(url)
        ip = address.split("%")[0]
        literal = f"[{ip}]" if ":" in ip else ip
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        host = parts.netloc.rsplit("@", 1)[-1]  # host[:port] as the URL gave it, without any user info
        return _Target(parts._replace(netloc=netloc).geturl(), {"Host": host}, {"sni_hostname": parts.hostname or ""})

    def _check_address(self, url: str, address: str) -> None:
        if address in self.policy.allow_hosts:
            return
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise ImageUnavailable(f"refused: a non-public address, {ip} ({url})")

    def _get_with_retries(self, url: str, target: _Target) -> tuple[str, bytes | None]:
        delay = self.policy.backoff_s
        for attempt in range(self.policy.retries + 1):
            try:
                return self._get(url, target)
            except _Retryable as exc:
                if attempt == self.policy.retries:
                    raise ImageUnavailable(f"{exc}, {attempt + 1} attempts ({url})") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _get(self, url: str, target: _Target) -> tuple[str, bytes | None]:
        """GET `target` (the URL pinned to its checked address); `url` is what redirects are relative to."""
        try:
            with self._client.stream(
                "GET", target.url, headers=target.headers, extensions=target.extensions
            ) as response:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise ImageUnavailable(f"redirect without a location ({url})")
                    return urljoin(url, location), None
                if response.status_code >= 500 or response.status_code == 429:
                    raise _Retryable(f"the server answered {response.status_code}")
                if response.status_code != 200:
                    raise ImageUnavailable(f"the server answered {response.status_code} ({url})")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
                    raise ImageUnavailable(
                        f"over the {self.policy.max_bytes / 1e6:.0f} MB limit: {int(declared) / 1e6:.1f} MB ({url})"
                    )
                chunks, total = [], 0
                deadline = time.monotonic() + self.policy.total_timeout_s
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > self.policy.max_bytes:
                        raise ImageUnavailable(f"more than the {self.policy.max_bytes / 1e6:.0f} MB limit ({url})")
                    if time.monotonic() > deadline:
                        raise _Retryable(f"the response took longer than {self.policy.total_timeout_s:.0f} s")
                    chunks.append(chunk)
                return url, b"".join(chunks)
        except httpx.TimeoutException:
            raise _Retryable(f"timed out after {self.policy.timeout_s:.0f} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__})") from None


@dataclass(frozen=True)
class _Target:
    """What is actually requested: the URL with its host replaced by the checked address, the Host
    header and the TLS server name (`sni_hostname`, an httpcore request extension) it needs."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


class _Retryable(Exception):
    pass


def _sniffed(url: str, body: bytes) -> bytes:
    """The bytes decide, not the extension or the content type: refuse what is plainly not an image."""
    if not body:
        raise ImageUnavailable(f"the server sent no data ({url})")
    head = body[:64].lstrip().lower()
    if any(head.startswith(marker) for marker in _NOT_IMAGES) and b"<svg" not in body[:1024].lower():
        raise ImageUnavailable(f"the server sent a web page or data, not an image ({url})")
    return body


class ImageResolver:
    """Turns a row's image reference into bytes, confined to the catalog (folder or zip) or the web."""

    def __init__(
        self, root: Path | None, archive: zipfile.ZipFile | None, folder: str = "", fetcher: UrlFetcher | None = None
    ) -> None:
        self.root = root.resolve() if root is not None else None
        self.archive = archive
        self.folder = folder.strip("/")
        self.fetcher = fetcher

    def load(self, ref: str) -> bytes:
        scheme = urlsplit(ref).scheme.lower()
        if scheme in ("http", "https"):
            if self.fetcher is None:
                raise ImageUnavailable(f"URL images are not allowed in this run ({ref})")
            return self.fetcher.fetch(ref)
        if scheme and len(scheme) > 1:  # not a Windows drive letter
            raise ImageUnavailable(f"only http(s) URLs or paths inside the catalog are accepted ({ref})")
        relative = PurePosixPath(ref.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts:
            raise ImageUnavailable(f"image paths must stay inside the catalog: no absolute paths, no '..' ({ref})")
        if self.folder:
            relative = PurePosixPath(self.folder) / relative
        return self._from_zip(str(relative)) if self.archive is not None else self._from_folder(relative)

    def _from_folder(self, relative: PurePosixPath) -> bytes:
        assert self.root is not None
        path = self.root / relative
        try:
            resolved = path.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            raise ImageUnavailable(f"no such file in the catalog folder ({relative})") from None
        if not resolved.is_relative_to(self.root):
            raise ImageUnavailable(f"refused, it links outside the catalog folder ({relative})")
        if not resolved.is_file():
            raise ImageUnavailable(f"not a file ({relative})")
        size = resolved.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageUnavailable(f"over the {MAX_IMAGE_BYTES / 1e6:.0f} MB limit: {size / 1e6:.1f} MB ({relative})")
        return resolved.read_bytes()

    def _from_zip(self, name: str) -> bytes:
        assert self.archive is not None
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise ImageUnavailable(f"no such file in the catalog zip ({name})") from None
        if info.file_size > MAX_IMAGE_BYTES:
            raise ImageUnavailable(
                f"over the {MAX_IMAGE_BYTES / 1e6:.0f} MB limit: {info.file_size / 1e6:.1f} MB ({name})"
            )
        with self.archive.open(info) as member:
            data = member.read(MAX_IMAGE_BYTES + 1)  # bounded even if the zip lies about sizes
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageUnavailable(f"over the {MAX_IMAGE_BYTES / 1e6:.0f} MB limit ({name})")
        return data

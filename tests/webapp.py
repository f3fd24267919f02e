"""A real Vitrine web server for tests: a small ingested catalog, uvicorn on 127.0.0.1 in a thread,
and httpx clients that carry cookies and the CSRF token like a browser does."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from catalogs import make_rows, write_csv
from sqlalchemy import select

from api.app import create_app
from catalog.db import Product, Vendor
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from workflow import claims, offers_service
from workflow.models import CustomerRequest, User
from workflow.payments import TestPaymentProvider
from workflow.request_tokens import token_hash
from workflow.settings import Settings
from workflow.users import add_user

SCRIPT_TITLE = "<script>alert(1)</script>"
#: The staff most web tests sign in as: two operators (a claim holder and another) and an admin.
STAFF = (("alice", "operator"), ("bob", "operator"), ("root", "admin"))
_CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


def build_catalog(folder: Path, embedder) -> Workspace:  # type: ignore[no-untyped-def]
    """Two vendors; product 5 of acme is titled with a script tag (it must render as text)."""
    workspace = Workspace(folder / "home")
    rows = make_rows(30)
    rows[5]["title"] = SCRIPT_TITLE
    (folder / "acme").mkdir()
    (folder / "globex").mkdir()
    ingest_catalog(write_csv(folder / "acme" / "catalog.csv", rows), "acme", embedder, workspace)
    ingest_catalog(write_csv(folder / "globex" / "catalog.csv", make_rows(10, start=30)), "globex", embedder, workspace)
    return workspace


class ServerThread:
    """uvicorn serving `app` on a free port of 127.0.0.1 until `stop()`."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Site:
    url: str
    settings: Settings
    payments: TestPaymentProvider
    app: object

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.app.state.sessions  # type: ignore[attr-defined]

    def client(self) -> Browser:
        return Browser(self.url)


class Browser:
    """An httpx client that fetches pages and posts forms with the page's CSRF token."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=60)

    def get(self, path: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        return self.http.get(path, **kwargs)

    def token(self) -> str:
        if "csrftoken" not in self.http.cookies:
            page = self.http.get("/login")
            found = _CSRF_INPUT.search(page.text)
            assert found, "the page has no CSRF field"
        return self.http.cookies["csrftoken"]

    def post(self, path: str, data: dict | None = None, files: dict | None = None, csrf: bool = True) -> httpx.Response:
        data = dict(data or {})
        if csrf:
            data["_csrf_token"] = self.token()
        return self.http.post(path, data=data, files=files)

    def login(self, name: str, password: str) -> httpx.Response:
        return self.post("/login", {"name": name, "password": password, "next": "/operator"})

    def close(self) -> None:
        self.http.close()


def start_site(workspace: Workspace, **overrides) -> tuple[Site, ServerThread]:  # type: ignore[no-untyped-def]
    overrides.setdefault("index_refresh_s", 0.3)
    overrides.setdefault("sweep_s", 0.3)  # the time limits apply within a blink, as a test waits for them
    settings = Settings(workspace=workspace, model="test-tiny", **overrides)
    payments = TestPaymentProvider()
    app = create_app(settings, payments=payments)
    server = ServerThread(app)
    url = server.start()
    return Site(url, settings, payments, app), server


@contextmanager
def staffed_site(folder: Path, embedder, password: str, staff=STAFF, **overrides) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    """A running site over the small test catalog in `folder`, with `staff` accounts sharing `password`:
    (name, role) pairs, or (name, "vendor", vendor name) for a user of one of the catalog's vendors."""
    site, server = start_site(build_catalog(folder, embedder), **overrides)
    with site.sessions() as session:
        vendors = dict(session.execute(select(Vendor.name, Vendor.id)).all())
    for name, role, *vendor in staff:
        add_user(site.sessions, name, role, password, vendor_id=vendors[vendor[0]] if vendor else None)
    try:
        yield site
    finally:
        server.stop()


def bearer(http: httpx.Client, name: str, password: str) -> dict[str, str]:
    """The Authorization header of a staff token for `name` (`POST /api/staff/token`)."""
    answer = http.post("/api/staff/token", json={"name": name, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


class NoMail:
    """An outbox that drops mail: for offers sent by workflow calls in tests that read no mail."""

    def send_template(self, *args: object, **kwargs: object) -> None:
        pass


def offered_request(
    site: Site, http: httpx.Client, photo: bytes, vendor: str, operator: str = "alice"
) -> tuple[str, int, int]:
    """A customer's request (JSON API, with `photo`) with one offer of `vendor`'s first product at
    25.00, sent by `operator` (an existing account): (customer token, request id, offer id)."""
    made = http.post(
        "/api/requests", data={"email": "shopper@example.com"}, files={"photo": ("p.jpg", photo, "image/jpeg")}
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    with site.sessions() as session:
        request_id = session.scalar(select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token)))
        user = session.scalar(select(User).where(User.name == operator))
        product = session.scalar(
            select(Product.id).join(Vendor).where(Vendor.name == vendor).order_by(Product.id).limit(1)
        )
    claims.claim(site.sessions, request_id, user, 600)
    [offer] = offers_service.send_offers(
        site.sessions, request_id, user, [offers_service.OfferDraft(product, "25.00")], 24, NoMail(), "/r/{token}"
    )
    return token, request_id, offer

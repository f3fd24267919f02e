"""Secrets at rest and in logs (issue 17, item 9), against a real server on a real data folder:
hashed customer tokens, tokens out of the access log, the demo password out of the console, a
private data folder, customer photos for their owner and staff only, the security and cache
headers, secure cookies by default and an error page whose "Go back" never leaves the site."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from catalogs import product_photo
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner
from webapp import build_catalog, start_site

from api.errors import same_site_back
from catalog.db import ProductImage
from cli.main import app as cli_app
from vision.embedder import open_embedder
from workflow import claims, offers_service
from workflow.models import CustomerRequest, User
from workflow.request_tokens import token_hash
from workflow.settings import Settings
from workflow.users import add_user

PASSWORD = "correct horse battery"
runner = CliRunner()


@pytest.fixture(scope="module")
def site(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    embedder = open_embedder("test-tiny", "onnx", store)
    workspace = build_catalog(tmp_path_factory.mktemp("secrets"), embedder)
    site, server = start_site(workspace)
    add_user(site.sessions, "alice", "operator", PASSWORD)
    yield site
    server.stop()


def _submit(site, number: int) -> str:  # type: ignore[no-untyped-def]
    """A customer's request with product photo `number`; its token (from the redirect)."""
    browser = site.client()
    response = browser.post(
        "/requests",
        {"email": "c@example.com", "words": "", "budget": ""},
        files={"photo": ("photo.jpg", product_photo(number), "image/jpeg")},
    )
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def _request(site, token: str) -> CustomerRequest:  # type: ignore[no-untyped-def]
    with site.sessions() as session:
        return session.scalar(select(CustomerRequest).where(CustomerRequest.token_sha256 == token_hash(token)))


def _mail_with(site, needle: str, timeout: float = 10.0) -> Path:  # type: ignore[no-untyped-def]
    """The .eml file the app's background sender wrote with `needle` in it."""
    deadline = time.monotonic() + timeout
    while True:
        for path in site.settings.outbox_dir.glob("*.eml"):
            if needle in path.read_text():
                return path
        assert time.monotonic() < deadline, f"no .eml file with {needle!r}"
        time.sleep(0.05)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- tokens at rest ----------------------------------------------------------------------------------


def test_the_database_keeps_a_hash_of_the_customer_token_never_the_token(site) -> None:
    token = _submit(site, 103)
    request = _request(site, token)
    assert request is not None and request.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    engine = site.app.state.engine
    with engine.connect() as connection:
        # Every table the request's data lives in, every column: the token is in none of them. (The
        # mail queue, mail_messages, holds the e-mail that carries the link until it is delivered.)
        for table in inspect(connection).get_table_names():
            if table in ("mail_messages", "alembic_version"):
                continue
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                assert token not in repr(tuple(row)), f"the token is stored in {table}"
    assert site.client().get(f"/r/{token}").status_code == 200  # the hash finds the request
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert site.client().get(f"/r/{other}").status_code == 404


def test_later_e_mails_still_carry_the_link(site) -> None:
    token = _submit(site, 104)
    request = _request(site, token)
    with site.sessions() as session:
        alice = session.scalar(select(User).where(User.name == "alice"))
        product = session.scalar(select(ProductImage.product_id).limit(1))
    claims.claim(site.sessions, request.id, alice, 600)
    offers_service.send_offers(
        site.sessions,
        request.id,
        alice,
        [offers_service.OfferDraft(product, "25.00")],
        24,
        site.app.state.outbox,
        f"{site.url}/r/{{token}}",
        site.settings.secret_key,
    )
    mail = _mail_with(site, "offer")
    assert f"/r/{token}" in mail.read_text()  # derived again from the app's secret, not read from the database


# --- a private data folder ---------------------------------------------------------------------------


def test_the_data_folder_is_private_and_its_secrets_are_0600(site) -> None:
    token = _submit(site, 105)
    home = site.settings.workspace.home
    assert _mode(home) == 0o700
    sha = _request(site, token).photo_sha256
    photo = site.settings.workspace.thumbnail_path(sha)
    database = [home / "vitrine.db"] if site.settings.workspace.database_url.startswith("sqlite") else []
    for path in (*database, home / "secret.key", photo):
        assert _mode(path) == 0o600, f"{path.name} is {oct(_mode(path))}"
    mail = _mail_with(site, f"/r/{token}")  # mail is mail: it carries the link, so it is private
    assert _mode(mail) == 0o600 and _mode(mail.parent) == 0o700


def test_an_older_world_readable_database_is_narrowed_when_opened(tmp_path) -> None:
    from catalog.db import make_engine
    from catalog.workspace import Workspace

    home = tmp_path / "old"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    database = home / "vitrine.db"
    make_engine(f"sqlite:///{database}").dispose()
    database.chmod(0o644)
    workspace = Workspace(home)
    make_engine(workspace.database_url).dispose()
    assert _mode(home) == 0o700 and _mode(database) == 0o600


# --- customer photos ---------------------------------------------------------------------------------


def test_a_customer_photo_is_shown_to_its_token_holder_and_staff_only(site) -> None:
    token = _submit(site, 106)
    sha = _request(site, token).photo_sha256
    page = site.client().get(f"/r/{token}")
    assert f"/r/{token}/photo" in page.text and f"/images/{sha}.jpg" not in page.text
    own = site.client().get(f"/r/{token}/photo")
    assert own.status_code == 200 and own.content[:2] == b"\xff\xd8"
    assert own.headers["cache-control"] == "private, no-store"
    stranger = site.client().get(f"/images/{sha}.jpg")
    assert stranger.status_code == 404  # the same answer as for no such image
    alice = site.client()
    assert alice.login("alice", PASSWORD).status_code == 303
    staff = alice.get(f"/images/{sha}.jpg")
    assert staff.status_code == 200 and staff.headers["cache-control"] == "private, no-store"
    with site.sessions() as session:
        catalog_sha = session.scalar(select(ProductImage.sha256).limit(1))
    public = site.client().get(f"/images/{catalog_sha}.jpg")
    assert public.status_code == 200 and "public" in public.headers["cache-control"]


# --- headers -----------------------------------------------------------------------------------------


def test_token_and_staff_pages_are_never_stored_and_carry_the_security_headers(site) -> None:
    token = _submit(site, 107)
    alice = site.client()
    assert alice.login("alice", PASSWORD).status_code == 303
    for response in (site.client().get(f"/r/{token}"), alice.get("/operator"), site.client().get(f"/r/{'x' * 32}")):
        headers = response.headers
        assert headers["cache-control"] == "no-store", response.url
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "same-origin"
        assert "camera=()" in headers["permissions-policy"] and "geolocation=(self)" in headers["permissions-policy"]
    assert "no-store" not in site.client().get("/static/app.css").headers.get("cache-control", "")


def test_cookies_are_secure_by_default_outside_localhost(monkeypatch) -> None:
    monkeypatch.delenv("VITRINE_SECURE_COOKIES", raising=False)
    monkeypatch.setenv("VITRINE_PUBLIC_URL", "https://shop.example")
    assert Settings.from_env().secure_cookies is True
    monkeypatch.setenv("VITRINE_PUBLIC_URL", "http://127.0.0.1:8000")
    assert Settings.from_env().secure_cookies is False  # the demo: no TLS to send them over
    monkeypatch.delenv("VITRINE_PUBLIC_URL")
    assert Settings.from_env().secure_cookies is False  # `vitrine serve`'s own address is local
    monkeypatch.setenv("VITRINE_PUBLIC_URL", "https://shop.example")
    monkeypatch.setenv("VITRINE_SECURE_COOKIES", "0")  # said explicitly (a TLS proxy that is not there yet)
    assert Settings.from_env().secure_cookies is False


def test_the_error_pages_back_link_never_leaves_the_site(site) -> None:
    host = site.url.split("//", 1)[1]
    for referer, back in (
        (f"http://{host}/r/abc?x=1", "/r/abc?x=1"),
        ("https://evil.example/", "/"),
        (f"https://evil.example/?//{host}//evil.example/x", "/"),  # today's check: the host anywhere in it
        (f"http://{host}//evil.example/x", "/"),
        (f"http://{host}/\\evil.example", "/"),
        (f"http://{host}.evil.example/", "/"),
    ):
        assert same_site_back(referer, host) == back, referer
        page = site.client().get("/r/" + "y" * 32, headers={"referer": referer})
        found = re.search(r'href="([^"]*)" data-testid="error-back"', page.text)
        assert page.status_code == 404 and found and found.group(1).replace("&amp;", "&") == back, referer


# --- logs --------------------------------------------------------------------------------------------


def _tiny_app():  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    """`vitrine serve` configures logging for the whole process; put it back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    loggers = {name: logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    kept = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in loggers.items()}
    yield
    root.handlers[:], root.level = saved
    for name, lg in loggers.items():
        lg.handlers[:], lg.level, lg.propagate = kept[name]


def test_the_access_log_of_vitrine_serve_never_shows_a_customer_token(monkeypatch, capfd, restore_logging) -> None:
    """`vitrine serve`'s own logging configuration, on a real uvicorn serving real requests."""
    captured: dict = {}
    monkeypatch.setattr("api.app.create_app", lambda settings: _tiny_app())
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: captured.update(app=app, **options))
    monkeypatch.setenv("VITRINE_LOG_FORMAT", "text")
    assert runner.invoke(cli_app, ["serve", "--model", "test-tiny"]).exit_code == 0
    config = uvicorn.Config(captured["app"], host="127.0.0.1", port=0, log_config=captured["log_config"])
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    token = "Tk_" + "a1B2c3D4" * 4
    try:
        paths = (f"/r/{token}", f"/r/{token}/photo", f"/api/requests/{token}", f"/set-password/{token}", "/operator")
        for path in paths:
            assert httpx.get(f"http://127.0.0.1:{port}{path}").status_code == 200
        time.sleep(0.2)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    logged = capfd.readouterr().err
    assert "/operator" in logged and "/r/[token]/photo" in logged and "/api/requests/[token]" in logged
    assert "/set-password/[token]" in logged  # the one-time links' tokens too
    assert token not in logged


def test_the_demo_never_prints_the_operators_password(tmp_path, monkeypatch) -> None:
    """`vitrine demo` prints where the password is kept, not the password: its console is the server log.
    (The catalog steps are skipped here; the operator account and its password file are real.)"""
    from demo import command

    home = tmp_path / "demo-home"
    monkeypatch.setenv("VITRINE_HOME", str(home))

    def operator_only(model: str, backend: str, seed: int, products: int) -> command.DemoState:
        operator, password = command._demo_operator(home)
        return command.DemoState(home / "demo" / "catalog", operator, password)

    monkeypatch.setattr(command, "prepare_demo", operator_only)
    result = runner.invoke(cli_app, ["demo", "--model", "test-tiny", "--prepare-only"])
    assert result.exit_code == 0, result.output
    secret = tmp_path / "demo-home" / "demo" / "operator-password"
    password = secret.read_text().strip()
    assert password and password not in result.output
    assert str(secret) in "".join(result.output.split())  # named, whatever the console's line wrapping
    assert _mode(secret) == 0o600
    assert os.stat(tmp_path / "demo-home").st_mode & 0o077 == 0

"""Links come from the configured public URL and unknown hosts are refused (issue 17, item 8): a
`Host: evil.example` header once put `http://evil.example/r/<token>` into the API answer and the
customer's e-mail."""

from __future__ import annotations

import time

import httpx
import pytest
from catalogs import product_photo
from webapp import build_catalog, start_site

from api.cli import serving_url
from api.hosts import host_allowed, host_name
from vision.embedder import open_embedder
from workflow.settings import Settings

PUBLIC = "https://shop.example"


@pytest.fixture(scope="module")
def workspace(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    return build_catalog(tmp_path_factory.mktemp("hosts-catalog"), open_embedder("test-tiny", "onnx", store))


@pytest.fixture(scope="module")
def site(workspace):
    site, server = start_site(workspace, public_url=PUBLIC)
    yield site
    server.stop()


def _create(site, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{site.url}/api/requests",
        data={"email": "hosts@example.com"},
        files={"photo": ("p.jpg", product_photo(5), "image/jpeg")},
        headers=headers,
        timeout=60,
    )


def _mail_with(site, token: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for path in site.settings.outbox_dir.glob("*.eml"):
            text = path.read_text(errors="replace")
            if token in text:
                return text
        time.sleep(0.1)
    raise AssertionError("no e-mail with the request's link")


def test_an_unknown_host_is_refused_before_anything_happens(site) -> None:
    refused = _create(site, host="evil.example")
    assert refused.status_code == 400
    assert "does not answer for the host 'evil.example'" in refused.json()["detail"]
    assert httpx.get(f"{site.url}/", headers={"host": "evil.example:80"}).status_code == 400
    # The health probe answers whatever the host (load balancers probe by address).
    assert httpx.get(f"{site.url}/api/health", headers={"host": "10.1.2.3"}).status_code == 200


def test_links_in_the_answer_and_the_mail_use_the_public_url(site) -> None:
    created = _create(site)  # Host: 127.0.0.1:<port>, a local name, allowed
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == f"{PUBLIC}/r/{body['token']}"
    mail = _mail_with(site, body["token"])
    assert f"{PUBLIC}/r/{body['token']}" in mail
    assert "127.0.0.1" not in mail and "evil.example" not in mail


def test_an_app_without_a_public_url_never_links_to_a_foreign_host(workspace) -> None:
    """An app made in code (no public URL) answers any host, but links only to this machine."""
    bare, server = start_site(workspace)
    try:
        local = _create(bare).json()
        assert local["url"] == f"{bare.url}/r/{local['token']}"
        foreign = _create(bare, host="evil.example")
        assert foreign.status_code == 201
        body = foreign.json()
        assert body["url"] == f"http://127.0.0.1:8000/r/{body['token']}"
        assert "evil.example" not in _mail_with(bare, body["token"])
    finally:
        server.stop()


def test_the_public_host_itself_is_served(site) -> None:
    assert httpx.get(f"{site.url}/", headers={"host": "shop.example"}).status_code == 200
    assert httpx.get(f"{site.url}/", headers={"host": "SHOP.example.:443"}).status_code == 200


def test_allowed_hosts_default_to_the_public_host_and_this_machine(tmp_path, monkeypatch) -> None:
    from catalog.workspace import Workspace

    workspace = Workspace(tmp_path / "home")
    monkeypatch.delenv("VITRINE_PUBLIC_URL", raising=False)
    monkeypatch.delenv("VITRINE_ALLOWED_HOSTS", raising=False)
    monkeypatch.setenv("VITRINE_HOME", str(workspace.home))
    demo = Settings.from_env("test-tiny")
    assert demo.public_url == "http://127.0.0.1:8000"
    assert demo.trusted_hosts() == ["127.0.0.1", "localhost", "::1"]
    monkeypatch.setenv("VITRINE_PUBLIC_URL", "https://shop.example/")
    monkeypatch.setenv("VITRINE_ALLOWED_HOSTS", "shop.example, *.shop.example")
    deployed = Settings.from_env("test-tiny")
    assert deployed.public_url == "https://shop.example"
    assert deployed.trusted_hosts() == ["shop.example", "*.shop.example"]
    # An app made in code without a public URL (tests, benchmarks) answers any host.
    assert Settings(workspace=workspace, model="test-tiny").trusted_hosts() == ["*"]


def test_host_names_are_compared_without_port_case_or_brackets() -> None:
    assert host_name("Shop.Example:8443") == "shop.example"
    assert host_name("[::1]:8000") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1"
    assert host_allowed("a.shop.example", ["*.shop.example"])
    assert not host_allowed("evilshop.example", ["*.shop.example"])
    assert not host_allowed("shop.example.evil", ["shop.example"])
    assert host_allowed("anything", ["*"])


def test_serve_names_its_own_address_when_no_public_url_is_set() -> None:
    assert serving_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert serving_url("0.0.0.0", 9000) == "http://127.0.0.1:9000"
    assert serving_url("::1", 8000) == "http://[::1]:8000"

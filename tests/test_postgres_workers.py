"""Several app processes on one PostgreSQL and one data folder, as in production behind a proxy:
`uvicorn --workers 2` on one port and a third process on another, so every race below crosses
processes. Two operators claiming one request: exactly one wins. Parallel accepts of one request's
offers: exactly one charge. /metrics from any worker sums over all of them (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from catalogs import product_photo
from delivery_support import ADDRESS
from postgres import postgres_server
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from webapp import Browser, build_catalog

from catalog.db import Product, make_engine, session_factory
from vision.embedder import open_embedder
from workflow.models import CustomerRequest, Payment, User
from workflow.payments import APPROVED, TestPaymentProvider
from workflow.request_tokens import token_hash
from workflow.users import add_user

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app_from_env"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not answer in {timeout_s} s: {log.read_text()[-3000:]}")


class Cluster:
    def __init__(self, urls: list[str], sessions, home: Path) -> None:  # type: ignore[no-untyped-def]
        self.urls, self.sessions, self.home = urls, sessions, home

    def request(self, number: int) -> tuple[str, int]:
        """A customer's photo request, sent to the first process; (token, request id)."""
        customer = Browser(self.urls[0])
        response = customer.post(
            "/requests",
            {"email": "c@example.com", "words": "", "budget": ""},
            files={"photo": ("p.jpg", product_photo(number), "image/jpeg")},
        )
        customer.close()
        assert response.status_code == 303, response.text
        token = response.headers["location"].rsplit("/", 1)[1]
        with self.sessions() as session:
            return token, session.scalar(
                select(CustomerRequest.id).where(CustomerRequest.token_sha256 == token_hash(token))
            )

    def operator(self, name: str, url: str) -> Browser:
        browser = Browser(url)
        assert browser.login(name, PASSWORD).status_code == 303
        return browser


@pytest.fixture(scope="module")
def cluster(tiny, store, vitrine_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("two-workers")
    with postgres_server() as database_url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("VITRINE_DATABASE_URL", database_url)
        workspace = build_catalog(folder, open_embedder("test-tiny", "onnx", store))
        (workspace.home / "models").symlink_to(vitrine_home / "models")  # the exported test model, not a new export
        engine = make_engine(database_url)
        sessions = session_factory(engine)
        for name in ("alice", "bob"):
            add_user(sessions, name, "operator", PASSWORD)
        metrics_dir = folder / "prometheus"
        metrics_dir.mkdir()
        env = {
            **os.environ,
            "VITRINE_HOME": str(workspace.home),
            "VITRINE_DATABASE_URL": database_url,
            "VITRINE_MODEL": "test-tiny",
            "VITRINE_SECRET_KEY": "one secret for every process of the site",
            "VITRINE_RATE_LIMITS": "off",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        ports = [_free_port(), _free_port()]
        logs = [folder / "workers.log", folder / "single.log"]
        processes = [_serve(env, ports[0], 2, logs[0]), _serve(env, ports[1], 1, logs[1])]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            for url, process, log in zip(urls, processes, logs, strict=True):
                _wait_healthy(url, process, log)
            yield Cluster(urls, sessions, workspace.home)
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            engine.dispose()


def _together(calls: list) -> list:  # type: ignore[type-arg]
    """Run the calls at the same moment, one thread each; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_operators_on_two_processes_claiming_one_request_exactly_one_wins(cluster: Cluster) -> None:
    alice, bob = cluster.operator("alice", cluster.urls[0]), cluster.operator("bob", cluster.urls[1])
    wins = {"alice": 0, "bob": 0}
    for number in range(5):
        _, request_id = cluster.request(40 + number)
        path = f"/operator/requests/{request_id}/claim"
        answers = _together([lambda p=path: alice.post(p), lambda p=path: bob.post(p)])
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [303, 409], [(a.status_code, a.text[:300]) for a in answers]
        winner = "alice" if answers[0].status_code == 303 else "bob"
        wins[winner] += 1
        loser = answers[1] if winner == "alice" else answers[0]
        assert f"{winner} is working on this request" in loser.text
        with cluster.sessions() as session:
            request = session.get(CustomerRequest, request_id)
            holder = session.get(User, request.claimed_by_id)
            assert (request.status, holder.name) == ("claimed", winner)
    # `next` from both processes at once never hands one request to both
    ids = {cluster.request(50 + number)[1] for number in range(3)}
    answers = _together([lambda: alice.post("/operator/next"), lambda: bob.post("/operator/next")])
    taken = [int(m.group(1)) for a in answers if (m := re.search(r"/operator/requests/(\d+)$", a.headers["location"]))]
    assert len(taken) == 2 and len(set(taken)) == 2 and set(taken) <= ids, [a.headers["location"] for a in answers]
    alice.close()
    bob.close()


def test_parallel_accepts_across_processes_charge_exactly_once(cluster: Cluster) -> None:
    token, request_id = cluster.request(60)
    alice = cluster.operator("alice", cluster.urls[1])
    assert alice.post(f"/operator/requests/{request_id}/claim").status_code == 303
    with cluster.sessions() as session:
        picks = session.scalars(select(Product.id).order_by(Product.id).limit(2)).all()
    sent = alice.post(
        f"/operator/requests/{request_id}/offers",
        {"product_id": [str(p) for p in picks], **{f"price_{p}": "25.00" for p in picks}, "expires_in_hours": "12"},
    )
    assert sent.status_code == 303, sent.text
    alice.close()
    page = httpx.get(f"{cluster.urls[0]}/api/requests/{token}", timeout=30).json()
    offers = [offer["id"] for offer in page["offers"]]
    assert len(offers) == 2
    ledger = TestPaymentProvider(cluster.home / "test-payments.sqlite")
    holds_before = len(ledger.open_holds())

    def accept(i: int):  # type: ignore[no-untyped-def]
        return lambda: httpx.post(
            f"{cluster.urls[i % 2]}/api/requests/{token}/offers/{offers[i % 2]}/accept",
            json={"card_number": APPROVED, "delivery": ADDRESS},
            headers={"Idempotency-Key": f"race-{i}"},
            timeout=60,
        )

    answers = _together([accept(i) for i in range(8)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 7, [(a.status_code, a.text[:200]) for a in answers]
    assert all("Nothing was charged" in a.json()["hint"] for a in answers if a.status_code == 409)
    with cluster.sessions() as session:
        payments = session.scalars(select(Payment).where(Payment.request_id == request_id)).all()
        assert [p.status for p in payments] == ["authorised"]
        assert session.get(CustomerRequest, request_id).status == "paid"
    assert len(ledger.open_holds()) == holds_before + 1  # one hold at the provider, whichever process took it


def test_metrics_from_any_worker_sum_over_all_of_them(cluster: Cluster) -> None:
    def health_count(url: str) -> float:
        text = httpx.get(f"{url}/metrics", timeout=30).text
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "vitrine_requests_total" and s.labels.get("path") == "/api/health"
        )

    before = health_count(cluster.urls[0])
    for i in range(6):
        assert httpx.get(f"{cluster.urls[i % 2]}/api/health", timeout=30).status_code == 200
    assert health_count(cluster.urls[0]) == health_count(cluster.urls[1]) == before + 6

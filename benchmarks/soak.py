"""`vitrine bench soak`: mixed traffic against the running app for N minutes; errors, latency per route
and the server's memory over time.

Each client loops over what people do, drawn at random with fixed weights: a customer searches with a
photo (`POST /api/search`), sends a request (`POST /api/requests`), looks at one of its requests
(`GET /api/requests/{token}`) and accepts an offer it got with the test card (`.../accept`); an
operator (signed in through the form, with its CSRF token) claims the next request (`POST
/operator/next`), opens the workbench and sends an offer from its candidates. No request starts after
the time is up. Every answer that is not the route's success status, and every failed connection, is
an error, counted by route and status.

The server's resident memory (`VmRSS` of its process) is sampled every few seconds: at the start,
after the warm-up (the first fifth of the run, at most two minutes: caches, the index and the model
sessions fill up) and at the end; the growth after the warm-up is what a leak would show.

Without `--url` it starts the app itself (uvicorn, the full app, rate limits off: the load comes from
one address) over a scratch data folder of generated products with operator accounts; with `--url` it
loads a running app, operators signing in with `--operator NAME:PASSWORD` (none: no operator actions,
so no accepts either) and memory sampled only when `--server-pid` is given. Its rate limits see every
client as one address: serve it with `VITRINE_RATE_LIMITS=off`, or the 429s count as errors.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.serve import REPO_ROOT, fill_catalog, run_server
from benchmarks.synthetic_photos import synthetic_photo
from catalog.db import make_engine, session_factory
from catalog.workspace import Workspace
from vision.model_store import ModelStore
from workflow.users import add_user

APP = "api.app:create_app_from_env"
PHOTO_SIZE = (800, 600)
PHOTOS = 24
TEST_CARD = "4242 4242 4242 4242"  # the test payment provider's card that is always approved
#: Where the soak's orders go (the accept needs a delivery address; workflow/orders.py).
DELIVERY = {
    "name": "Soak Test",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postcode": "10117",
    "country": "DE",
    "phone": "030 901820",
}
OPERATOR_PASSWORD = "soak-operator-password"
#: How often each customer action is drawn (operators have their own loop step).
CUSTOMER_ACTIONS = {"search": 6, "create": 2, "check": 3}
#: A request in these states may still get offers.
WAITING = ("submitted", "matched", "queued", "claimed", "offers_sent")
_CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
_PICK = re.compile(r'data-testid="pick-(\d+)"')
_WORKBENCH = re.compile(r"/operator/requests/(\d+)")


@dataclass
class SoakSettings:
    minutes: float = 10.0
    clients: int = 8
    url: str | None = None
    operators: list[tuple[str, str]] = field(default_factory=list)  # name, password (with --url)
    server_pid: int | None = None
    model: str = "test-tiny"
    products: int = 2_000
    operator_share: float = 0.25  # of the clients
    sample_s: float = 2.0
    timeout_s: float = 60.0
    seed: int = 0


class Recorder:
    """Latencies and errors per route, from every client thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.examples: list[str] = []
        self.flow: Counter[str] = Counter()

    def call(self, route: str, expected: tuple[int, ...], send: Callable[[], httpx.Response]) -> httpx.Response | None:
        """Send, time and judge one request; None when it failed (counted as an error)."""
        began = time.perf_counter()
        try:
            response = send()
        except httpx.HTTPError as exc:
            self._error(route, type(exc).__name__, str(exc))
            return None
        elapsed = (time.perf_counter() - began) * 1000
        with self.lock:
            self.latencies[route].append(elapsed)
        if response.status_code not in expected:
            self._error(route, str(response.status_code), response.text[:300])
            return None
        return response

    def _error(self, route: str, what: str, detail: str) -> None:
        with self.lock:
            self.errors[f"{route} {what}"] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{route} {what}: {detail}")

    def count(self, what: str) -> None:
        with self.lock:
            self.flow[what] += 1

    def routes(self) -> dict[str, dict]:
        out = {}
        for route, values in sorted(self.latencies.items()):
            times = np.asarray(values)
            errors = sum(n for key, n in self.errors.items() if key.startswith(route + " "))
            out[route] = {
                "count": len(times),
                "errors": errors,
                "p50_ms": round(float(np.percentile(times, 50)), 1),
                "p99_ms": round(float(np.percentile(times, 99)), 1),
                "max_ms": round(float(times.max()), 1),
            }
        return out


class MemorySampler:
    """The server's resident memory every `every_s` seconds, from /proc (Linux)."""

    def __init__(self, pid: int | None, every_s: float) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._began = time.monotonic()

    def rss_mb(self) -> float | None:
        if self.pid is None:
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def __enter__(self) -> MemorySampler:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        rss = self.rss_mb()
        if rss is not None:
            self.samples.append((time.monotonic() - self._began, rss))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def summary(self, warmup_s: float) -> dict:
        if not self.samples:
            return {"start_mb": None, "after_warmup_mb": None, "end_mb": None, "peak_mb": None, "growth": None}
        after = [mb for at, mb in self.samples if at >= warmup_s] or [self.samples[-1][1]]
        start, warm, end = self.samples[0][1], after[0], self.samples[-1][1]
        return {
            "start_mb": round(start, 1),
            "after_warmup_mb": round(warm, 1),
            "end_mb": round(end, 1),
            "peak_mb": round(max(mb for _, mb in self.samples), 1),
            "growth_after_warmup": round((end - warm) / warm, 4),
            "samples": len(self.samples),
        }


class Client:
    """One simulated person's loop: a customer, or an operator when `operator` is given."""

    def __init__(self, url: str, recorder: Recorder, photos: list[bytes], seed: int, timeout_s: float) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=timeout_s)
        self.recorder = recorder
        self.photos = photos
        self.random = random.Random(seed)
        self.tokens: list[str] = []  # this customer's requests that may still get offers

    def close(self) -> None:
        self.http.close()

    # ---- customer ----------------------------------------------------------------------------------

    def customer_step(self) -> None:
        actions = list(CUSTOMER_ACTIONS)
        action = self.random.choices(actions, weights=[CUSTOMER_ACTIONS[a] for a in actions])[0]
        if action == "create" or (action == "check" and not self.tokens):
            self.create()
        elif action == "check":
            self.check()
        else:
            self.search()

    def search(self) -> None:
        photo = self.random.choice(self.photos)
        form = {"k": "12"}
        if self.random.random() < 0.3:
            form["text"] = "blue mug"
        self.recorder.call(
            "POST /api/search",
            (200,),
            lambda: self.http.post("/api/search", data=form, files={"photo": ("photo.jpg", photo, "image/jpeg")}),
        )

    def create(self) -> None:
        photo = self.random.choice(self.photos)
        made = self.recorder.call(
            "POST /api/requests",
            (201,),
            lambda: self.http.post(
                "/api/requests",
                data={"email": "soak@example.com", "words": "like this one"},
                files={"photo": ("photo.jpg", photo, "image/jpeg")},
            ),
        )
        if made is not None:
            self.tokens.append(made.json()["token"])
            self.recorder.count("requests_created")

    def check(self) -> None:
        token = self.random.choice(self.tokens)
        seen = self.recorder.call("GET /api/requests/{token}", (200,), lambda: self.http.get(f"/api/requests/{token}"))
        if seen is None:
            return
        view = seen.json()
        open_offers = [o["id"] for o in view["offers"] if o["status"] == "sent"]
        if not open_offers or view["status"] != "offers_sent":
            if view["status"] not in WAITING:
                self.tokens.remove(token)  # nothing more will happen to it
            return
        offer = open_offers[0]
        self.tokens.remove(token)  # one accept per request
        accepted = self.recorder.call(
            "POST /api/requests/{token}/offers/{id}/accept",
            (200,),
            lambda: self.http.post(
                f"/api/requests/{token}/offers/{offer}/accept",
                json={"card_number": TEST_CARD, "delivery": DELIVERY},
                headers={"Idempotency-Key": f"soak-{token[:12]}-{offer}"},
            ),
        )
        if accepted is not None:
            self.recorder.count("offers_accepted")

    # ---- operator ----------------------------------------------------------------------------------

    def sign_in(self, name: str, password: str) -> bool:
        page = self.recorder.call("GET /login", (200,), lambda: self.http.get("/login"))
        found = _CSRF_INPUT.search(page.text) if page is not None else None
        if found is None:
            return False
        done = self.recorder.call(
            "POST /login",
            (303,),
            lambda: self.http.post(
                "/login", data={"name": name, "password": password, "next": "/operator", "_csrf_token": found[1]}
            ),
        )
        return done is not None

    def _form(self, extra: dict) -> dict:
        return {**extra, "_csrf_token": self.http.cookies.get("csrftoken", "")}

    def operator_step(self) -> None:
        claimed = self.recorder.call(
            "POST /operator/next", (303,), lambda: self.http.post("/operator/next", data=self._form({}))
        )
        where = _WORKBENCH.search(claimed.headers.get("location", "")) if claimed is not None else None
        if where is None:
            time.sleep(0.2)  # the queue is empty: an operator looks again a little later
            return
        request_id = int(where[1])
        bench = self.recorder.call(
            "GET /operator/requests/{id}", (200,), lambda: self.http.get(f"/operator/requests/{request_id}")
        )
        picks = _PICK.findall(bench.text) if bench is not None else []
        if not picks:
            return
        chosen = picks[: self.random.randint(1, min(3, len(picks)))]
        form: dict = {"product_id": chosen, "expires_in_hours": "24"}
        form.update({f"price_{p}": f"{self.random.randint(10, 90)}.00" for p in chosen})
        sent = self.recorder.call(
            "POST /operator/requests/{id}/offers",
            (303,),
            lambda: self.http.post(f"/operator/requests/{request_id}/offers", data=self._form(form)),
        )
        if sent is not None:
            self.recorder.count("offers_sent")


def run_soak(settings: SoakSettings, store: ModelStore, log: Callable[[str], None] = print) -> dict:
    """Run the soak (starting the app first unless `settings.url`); the JSON summary."""
    if settings.minutes <= 0 or settings.clients < 1:
        raise ValueError("--minutes must be above 0 and --clients at least 1")
    photos = [synthetic_photo(500 + seed, PHOTO_SIZE, quality=85) for seed in range(PHOTOS)]
    if settings.url:
        return _load(settings, settings.url, settings.operators, settings.server_pid, photos, log)
    with _own_server(settings, store, log) as (url, operators, pid):
        return _load(settings, url, operators, pid, photos, log)


@contextmanager
def _own_server(settings: SoakSettings, store: ModelStore, log: Callable[[str], None]) -> Iterator[tuple]:
    directory, manifest = store.resolve(settings.model)
    with tempfile.TemporaryDirectory(prefix="vitrine-soak-") as scratch:
        workspace = Workspace(Path(scratch) / "home")
        log(f"filling a catalog of {settings.products:,} generated products ({manifest.name}) ...")
        fill_catalog(workspace, manifest, settings.products)
        engine = make_engine(workspace.database_url)
        operators = []
        for number in range(max(1, round(settings.clients * settings.operator_share))):
            name = f"soak-operator-{number + 1}"
            add_user(session_factory(engine), name, "operator", OPERATOR_PASSWORD)
            operators.append((name, OPERATOR_PASSWORD))
        engine.dispose()
        env = {
            **os.environ,
            "VITRINE_HOME": str(workspace.home),
            "VITRINE_MODEL": str(directory),
            "VITRINE_RATE_LIMITS": "off",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        env.pop("VITRINE_DATABASE_URL", None)
        log("starting the server ...")
        with run_server(APP, env, Path(scratch) / "server.log", 300) as (url, usage):
            yield url, operators, usage["pid"]


def _load(
    settings: SoakSettings,
    url: str,
    operators: list[tuple[str, str]],
    pid: int | None,
    photos: list[bytes],
    log: Callable[[str], None],
) -> dict:
    duration_s = settings.minutes * 60
    warmup_s = min(120.0, duration_s / 5)
    recorder = Recorder()
    # At least one operator when there are accounts, and at least one customer.
    operator_clients = 0
    if operators and settings.clients > 1:
        operator_clients = min(settings.clients - 1, max(1, round(settings.clients * settings.operator_share)))
    clients = [Client(url, recorder, photos, settings.seed + n, settings.timeout_s) for n in range(settings.clients)]
    roles = []
    for n, client in enumerate(clients):
        if n < operator_clients:
            name, password = operators[n % len(operators)]
            roles.append("operator" if client.sign_in(name, password) else "customer")
        else:
            roles.append("customer")
    log(f"{settings.clients} clients ({roles.count('operator')} operators) for {duration_s:.0f} s against {url} ...")
    began = time.monotonic()
    deadline = began + duration_s

    def loop(client: Client, role: str) -> None:
        while time.monotonic() < deadline:
            if role == "operator":
                client.operator_step()
            else:
                client.customer_step()

    with MemorySampler(pid, settings.sample_s) as memory:
        threads = [threading.Thread(target=loop, args=(c, r), daemon=True) for c, r in zip(clients, roles, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.monotonic() - began
    for client in clients:
        client.close()
    routes = recorder.routes()
    total = sum(r["count"] for r in routes.values())
    errors = sum(recorder.errors.values())
    return {
        "url": url if settings.url else None,
        "minutes": settings.minutes,
        "clients": settings.clients,
        "operators": roles.count("operator"),
        "model": None if settings.url else settings.model,
        "products": None if settings.url else settings.products,
        "seconds": round(elapsed, 1),
        "warmup_s": round(warmup_s, 1),
        "requests": total,
        "requests_per_s": round(total / elapsed, 2),
        "errors": errors,
        "errors_by_route": dict(sorted(recorder.errors.items())),
        "error_examples": recorder.examples,
        "flow": dict(recorder.flow),
        "routes": routes,
        "server_rss": memory.summary(warmup_s),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }

"""`vitrine bench serve`: photo searches per second through the real web server, against the embedder alone.

A catalog of generated products is written straight into a scratch workspace (database rows in
bulk, random unit vectors into the vector store, the index built from it): what is measured is the
query path, not ingest. The server runs under uvicorn in its own process; the load comes from
another process posting real JPEG photos from N concurrent clients, a fixed number of requests per
level, bounded in time. The embedder's own batched rate is measured in this process on the same
model, before each level of load and after the last, and the throughput of the busiest level is
reported as a ratio to the rates bracketing it: on a shared machine only figures from the same run,
taken close together, are comparable.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert

from benchmarks.embed import benchmark_model
from benchmarks.synthetic_photos import synthetic_photo
from catalog.catalog_index import CatalogIndex
from catalog.db import Product, ProductImage, Vendor, make_engine
from catalog.ids import image_id, product_id
from catalog.workspace import Workspace
from index.filters import ItemAttributes
from index.vector_store import VectorStore
from vision.manifest import ModelManifest
from vision.model_store import ModelStore
from vision.onnx_embedder import OnnxEmbedder

DEFAULT_APP = "api.search_app:create_search_app"
VENDORS = 20
CATEGORIES = ("earrings", "lamps", "mugs", "shoes", "bags", "scarves", "watches", "chairs")
FILL_CHUNK = 20_000
SHARED_THUMBNAIL = "0" * 64
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ServeBenchSettings:
    products: int = 100_000
    clients: tuple[int, ...] = (1, 16)
    requests: int = 320
    duration_s: float = 120.0
    model: str = "ViT-B-32"
    random_weights: bool = True
    window_ms: float = 4.0
    max_batch: int = 16
    photos: int = 16
    photo_size: tuple[int, int] = (1600, 1200)
    app: str = DEFAULT_APP
    startup_timeout_s: float = 600.0


def fill_catalog(workspace: Workspace, manifest: ModelManifest, products: int, seed: int = 0) -> None:
    """`products` generated products of `VENDORS` vendors, one image each with a random unit vector."""
    rng = np.random.default_rng(seed)
    engine = make_engine(workspace.database_url)
    store = VectorStore(workspace.vectors_dir(manifest.model_id), manifest.model_id, manifest.embed_dim)
    vendor_names = [f"vendor-{v:02d}" for v in range(VENDORS)]
    with engine.begin() as connection:
        connection.execute(insert(Vendor), [{"id": v + 1, "name": name} for v, name in enumerate(vendor_names)])
    for start in range(0, products, FILL_CHUNK):
        numbers = range(start, min(products, start + FILL_CHUNK))
        rows, images, ids, attributes = [], [], [], []
        for n in numbers:
            vendor = n % VENDORS
            sku = f"BENCH-{n:07d}"
            pid = product_id(vendor_names[vendor], sku)
            price = Decimal(5 + n % 400) + Decimal("0.99")
            category = CATEGORIES[n % len(CATEGORIES)]
            in_stock = n % 5 != 0
            rows.append(
                {
                    "id": pid,
                    "vendor_id": vendor + 1,
                    "sku": sku,
                    "title": f"Generated product {n}",
                    "price": price,
                    "currency": "EUR",
                    "category": category,
                    "in_stock": in_stock,
                    "row_hash": f"{n:064x}",
                }
            )
            iid = image_id(pid, 0)
            images.append(
                {
                    "id": iid,
                    "product_id": pid,
                    "position": 0,
                    "source": "generated",
                    "sha256": SHARED_THUMBNAIL,
                    "width": 600,
                    "height": 600,
                }
            )
            ids.append(iid)
            attributes.append(ItemAttributes(float(price), category, vendor_names[vendor], in_stock))
        with engine.begin() as connection:
            connection.execute(insert(Product), rows)
            connection.execute(insert(ProductImage), images)
        vectors = rng.standard_normal((len(ids), manifest.embed_dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.append(np.asarray(ids, np.int64), vectors, attributes)
    engine.dispose()
    index = CatalogIndex(workspace, manifest.model_id, manifest.embed_dim)  # built from the store, as planned
    index.save()
    index.close()


def embed_only_rate(embedder: OnnxEmbedder, batch: np.ndarray, rounds: int = 6) -> float:
    """Images per second of the embedder alone on ready pixels, at the server's largest batch."""
    began = time.perf_counter()
    for _ in range(rounds):
        embedder.embed_pixels(batch)
    return rounds * len(batch) / (time.perf_counter() - began)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def run_server(app: str, env: dict[str, str], log_path: Path, timeout_s: float) -> Iterator[tuple[str, dict]]:
    """uvicorn serving `app` (a factory) in a child process; yields its URL and, after exit, its usage."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    usage: dict = {}
    with log_path.open("wb") as log:
        # Load from one address is the point here: no per-client rate limits unless the caller sets them.
        child = subprocess.Popen(
            command, env={"VITRINE_RATE_LIMITS": "off", **env}, stdout=log, stderr=subprocess.STDOUT
        )
        usage["pid"] = child.pid  # for a caller that samples the server's memory while it runs (bench soak)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, child, log_path, timeout_s)
            yield url, usage
        finally:
            if child.returncode is None:  # a server that died at start-up is reaped already: keep its error
                child.terminate()
                try:
                    _, status, resources = _wait4(child.pid, 60)
                    usage["peak_rss_mb"] = round(resources.ru_maxrss / 1024, 1)
                    child.returncode = os.waitstatus_to_exitcode(status)
                except TimeoutError:
                    child.kill()
                    child.wait()


def _wait4(pid: int, timeout_s: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status, resources = os.wait4(pid, os.WNOHANG)
        if done:
            return done, status, resources
        time.sleep(0.05)
    raise TimeoutError


def _wait_until_up(url: str, child: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the server exited at start-up: {log_path.read_text()[-3000:]}")
        try:
            httpx.post(f"{url}/api/search", data={"text": "warm-up", "k": "1"}, timeout=60).raise_for_status()
            return
        except httpx.TransportError:
            time.sleep(0.25)
    raise RuntimeError(f"the server did not start within {timeout_s:.0f} s")


def write_photos(folder: Path, count: int, size: tuple[int, int]) -> float:
    """`count` distinct photo-like JPEGs, as a phone app uploads them; returns their mean size in KB."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for seed in range(count):
        data = synthetic_photo(1000 + seed, size, quality=88)
        (folder / f"{seed:03d}.jpg").write_bytes(data)
        total += len(data)
    return total / count / 1000


def run_load_process(url: str, photos: Path, clients: int, requests: int, duration_s: float, warmup: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.load",
        "--url",
        url,
        "--photos",
        str(photos),
        "--clients",
        str(clients),
        "--requests",
        str(requests),
        "--duration",
        str(duration_s),
        "--warmup",
        str(warmup),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_serve_bench(settings: ServeBenchSettings, store: ModelStore, log: Callable[[str], None] = print) -> dict:
    if not settings.clients or min(settings.clients) < 1:
        raise ValueError("give at least one client count, each at least 1")
    load_at_start = os.getloadavg()
    directory, manifest = benchmark_model(settings.model, settings.random_weights, store, log)
    embedder = OnnxEmbedder(directory, manifest)
    pixels = np.random.default_rng(0).standard_normal(
        (settings.max_batch, 3, *manifest.preprocess.image_size), dtype=np.float32
    )
    embedder.embed_pixels(pixels)  # warm-up
    embed_rates: list[float] = []  # measured before each level and after the last
    levels: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="vitrine-serve-bench-") as scratch:
        folder = Path(scratch)
        workspace = Workspace(folder / "home")
        log(f"filling a catalog of {settings.products:,} generated products ...")
        began = time.perf_counter()
        fill_catalog(workspace, manifest, settings.products)
        fill_s = time.perf_counter() - began
        index_kind = json.loads(next(workspace.index_dir(manifest.model_id).glob("v*/manifest.json")).read_text())[
            "engine"
        ]["kind"]
        log(f"catalog filled in {fill_s:.1f} s ({index_kind} index); writing {settings.photos} photos ...")
        photo_kb = write_photos(folder / "photos", settings.photos, settings.photo_size)
        env = {
            **os.environ,
            "VITRINE_HOME": str(workspace.home),
            "VITRINE_MODEL": str(directory),
            "VITRINE_SEARCH_WINDOW_MS": str(settings.window_ms),
            "VITRINE_SEARCH_MAX_BATCH": str(settings.max_batch),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        log("starting the server ...")
        with run_server(settings.app, env, folder / "server.log", settings.startup_timeout_s) as (url, usage):
            for clients in sorted(set(settings.clients)):
                embed_rates.append(embed_only_rate(embedder, pixels))
                log(f"embedding only: {embed_rates[-1]:.1f} images/s (batch {settings.max_batch})")
                log(f"{clients} client(s), up to {settings.requests} requests ...")
                level = run_load_process(
                    url, folder / "photos", clients, settings.requests, settings.duration_s, warmup=2 * clients
                )
                log(f"  {level['requests_per_s']} requests/s, p50 {level['p50_ms']} ms, errors {level['errors']}")
                levels[str(clients)] = level
    embed_rates.append(embed_only_rate(embedder, pixels))
    # The machine's state drifts: compare the busiest level with the embedder's rate just before and after it.
    embed_only = (embed_rates[-2] + embed_rates[-1]) / 2
    fewest, most = levels[str(min(settings.clients))], levels[str(max(settings.clients))]
    ratio = most["requests_per_s"] / embed_only
    return {
        "products": settings.products,
        "model": manifest.name,
        "architecture": manifest.architecture,
        "weights": "random" if settings.random_weights else manifest.source_label,
        "backend": "onnx",
        "index_type": index_kind,
        "window_ms": settings.window_ms,
        "max_batch": settings.max_batch,
        "photo_size": f"{settings.photo_size[0]}x{settings.photo_size[1]}",
        "photo_mean_kb": round(photo_kb, 1),
        "clients": sorted(set(settings.clients)),
        "requests_per_s": most["requests_per_s"],
        "requests_per_s_clients": max(settings.clients),
        "p50_ms": fewest["p50_ms"],
        "p99_ms": fewest["p99_ms"],
        "latency_clients": min(settings.clients),
        "errors": sum(level["errors"] for level in levels.values()),
        "embed_only_images_per_s": round(embed_only, 2),
        "embed_only_samples": [round(rate, 2) for rate in embed_rates],
        "requests_per_s_vs_embed_only": round(ratio, 3),
        "by_clients": levels,
        "server_peak_rss_mb": usage.get("peak_rss_mb"),
        "catalog_fill_s": round(fill_s, 1),
        "cpu_count": os.cpu_count(),
        "targets": {
            "zero_errors": sum(level["errors"] for level in levels.values()) == 0,
            "requests_per_s_at_least_0_7x_embed_only": ratio >= 0.7,
            "p50_at_most_100_ms": fewest["p50_ms"] <= 100,
        },
        "load_average_start_end": [round(load_at_start[0], 2), round(os.getloadavg()[0], 2)],
    }

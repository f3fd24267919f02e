"""A small ingested two-vendor catalog for the search tests, and a real HTTP server for an app."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from catalogs import make_rows, write_csv

from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from vision.embedder import Embedder


def build_workspace(folder: Path, embedder: Embedder) -> Workspace:
    """Vendor `acme` has rows 0-39, `globex` rows 40-59 (photos as `catalogs.product_photo(row)`)."""
    workspace = Workspace(folder / "home")
    for vendor, rows in (("acme", make_rows(40)), ("globex", make_rows(20, start=40))):
        (folder / vendor).mkdir(parents=True)
        ingest_catalog(write_csv(folder / vendor / "catalog.csv", rows), vendor, embedder, workspace)
    return workspace


@contextmanager
def live_server(app: object) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()

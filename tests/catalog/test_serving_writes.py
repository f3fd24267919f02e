"""Vectors written by the serving process itself (customer views): searchable at once while searches
run, kept in the store, not mistaken for another process's ingest; segments numbered once each when
two writers append at the same moment."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from search_catalog import build_workspace

from catalog.db import make_engine, session_factory
from catalog.ids import product_of_image, view_image_id
from catalog.index_watch import index_behind
from catalog.search_service import QueryInput, SearchService
from index.filters import ItemAttributes
from index.vector_store import VectorStore
from vision.embedder import l2_normalise, open_embedder


@pytest.fixture(scope="module")
def service(tiny, store, tmp_path_factory: pytest.TempPathFactory):
    workspace = build_workspace(tmp_path_factory.mktemp("serving-writes"), open_embedder("test-tiny", "onnx", store))
    engine = make_engine(workspace.database_url)
    service = SearchService(workspace, session_factory(engine), "test-tiny", window_ms=1.0, max_batch=4)
    yield service
    service.close()
    engine.dispose()


def test_written_vectors_are_found_at_once_while_searches_run(service) -> None:
    products = [h.product_id for h in asyncio.run(service.search(QueryInput(text="lamp", k=20)))]
    dim = service.manifest.embed_dim
    rng = np.random.default_rng(7)
    vectors = l2_normalise(rng.normal(size=(len(products), dim)).astype(np.float32))
    failures: list[BaseException] = []
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            try:
                service._search_vector(vectors[0], 10, None)
            except BaseException as exc:  # reported below
                failures.append(exc)
                return

    searchers = [threading.Thread(target=keep_searching) for _ in range(4)]
    for thread in searchers:
        thread.start()
    try:
        for product, vector in zip(products, vectors, strict=True):
            service.write_vectors(np.asarray([view_image_id(product, 0)]), vector[None], [ItemAttributes()])
    finally:
        stop.set()
        for thread in searchers:
            thread.join()
    assert not failures, failures
    assert not index_behind(service)  # its own segments: no reload needed
    for product, vector in zip(products, vectors, strict=True):
        (hit,) = service._search_vector(vector, 1, None)
        assert (hit.product_id, hit.image_id) == (product, view_image_id(product, 0))
        assert product_of_image(hit.image_id) == product

    # Another process appending to the store: the service is behind and refreshes to see it.
    other = VectorStore.open(service.index.store.directory)
    other.delete(np.asarray([view_image_id(products[0], 0)]))
    assert index_behind(service)
    service.refresh_index()
    assert not index_behind(service)
    assert view_image_id(products[0], 0) not in service.index.index


def test_two_writers_never_share_a_segment_number(tmp_path) -> None:
    stores = [VectorStore(tmp_path, "m", 4) for _ in range(2)]
    start = threading.Barrier(len(stores))

    def append(store: VectorStore, first: int) -> None:
        start.wait()
        for n in range(20):
            store.append(np.asarray([first + n]), np.eye(1, 4, dtype=np.float32))

    threads = [threading.Thread(target=append, args=(s, 1000 * i)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(VectorStore.open(tmp_path).live_ids()) == 40  # nobody's rows replaced
    assert VectorStore.open(tmp_path).last_segment == 40

"""A vendor's product edits reach the index: price and stock filters see them, a deactivated product
is gone from search with pages still full, and comes back, vectors and all, when reactivated."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from catalogs import make_rows, product_photo, write_csv
from sqlalchemy import select

from catalog.catalog_index import CatalogIndex
from catalog.db import Product, make_engine, session_factory
from catalog.doctor import check_workspace
from catalog.ids import MAX_IMAGES_PER_PRODUCT, MAX_VIEWS_PER_PRODUCT, image_id, product_id, view_image_id
from catalog.product_search import search_products
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from catalog_ingest.product_edits import (
    ProductEditRefused,
    ProductNotFound,
    edit_product,
    repair_visibility,
    sinks_of,
)
from index.filters import SearchFilter
from vision.embedder import open_embedder
from vision.pipeline import load_pixels


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


@pytest.fixture
def catalog(tmp_path: Path, embedder):
    workspace = Workspace(tmp_path / "home")
    ingest_catalog(write_csv(tmp_path / "c.csv", make_rows(30)), "acme", embedder, workspace)
    ingest_catalog(write_csv(tmp_path / "o.csv", make_rows(3, start=100)), "other", embedder, workspace)
    engine = make_engine(workspace.database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        vendor_id = session.scalar(select(Product.vendor_id).where(Product.sku == "SKU-00007"))
    yield workspace, sessions, vendor_id
    engine.dispose()


def _search(workspace: Workspace, sessions, embedder, seed: int, k: int = 5, search_filter=None):
    index = CatalogIndex(workspace, embedder.manifest.model_id, embedder.manifest.embed_dim)
    query = embedder.embed_pixels(load_pixels(product_photo(seed), embedder.manifest.preprocess)[None])[0]
    try:
        return search_products(index, sessions, query, k, search_filter)
    finally:
        index.close()


def test_a_price_edit_reaches_the_index_attributes(catalog, embedder):
    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")  # 17.50 EUR
    cheap = SearchFilter.of(max_price=10)
    assert "SKU-00007" not in [h.sku for h in _search(workspace, sessions, embedder, 7, search_filter=cheap)]
    edited = edit_product(sessions, sinks_of(workspace), vendor_id, pid, price="9,99")
    assert edited.price == Decimal("9.99") and edited.currency == "EUR"
    hits = _search(workspace, sessions, embedder, 7, search_filter=cheap)
    assert hits[0].sku == "SKU-00007" and hits[0].price == "9.99"


def test_a_stock_edit_reaches_the_in_stock_filter(catalog, embedder):
    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    in_stock = SearchFilter.of(in_stock=True)
    assert _search(workspace, sessions, embedder, 7, search_filter=in_stock)[0].sku == "SKU-00007"
    assert edit_product(sessions, sinks_of(workspace), vendor_id, pid, in_stock=False).in_stock is False
    assert "SKU-00007" not in [h.sku for h in _search(workspace, sessions, embedder, 7, search_filter=in_stock)]


def test_deactivated_leaves_search_with_pages_full_and_comes_back(catalog, embedder):
    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    sinks = sinks_of(workspace)
    assert _search(workspace, sessions, embedder, 7)[0].sku == "SKU-00007"
    edit_product(sessions, sinks, vendor_id, pid, active=False)
    hits = _search(workspace, sessions, embedder, 7, k=10)
    assert "SKU-00007" not in [h.sku for h in hits] and len(hits) == 10  # removed from the index, not post-filtered
    assert check_workspace(workspace)["healthy"]  # an inactive product's images are not "without vectors"
    edit_product(sessions, sinks, vendor_id, pid, active=False)  # twice: nothing kept is lost
    edit_product(sessions, sinks, vendor_id, pid, price="11.00", active=True)
    hits = _search(workspace, sessions, embedder, 7)
    assert hits[0].sku == "SKU-00007" and hits[0].score == pytest.approx(1.0, abs=1e-4) and hits[0].price == "11.00"
    assert not list((workspace.vectors_dir(embedder.manifest.model_id) / "inactive").glob("*.npz"))


def test_an_ingest_keeps_a_deactivated_product_out_of_search(catalog, embedder, tmp_path):
    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=False)
    rows = make_rows(30)
    rows[7]["title"] = "Renamed in the back office"
    ingest_catalog(write_csv(tmp_path / "again.csv", rows), "acme", embedder, workspace)
    assert "SKU-00007" not in [h.sku for h in _search(workspace, sessions, embedder, 7, k=10)]
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=True)
    assert _search(workspace, sessions, embedder, 7)[0].sku == "SKU-00007"


def test_bad_price_and_foreign_products_are_refused_and_change_nothing(catalog):
    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    for bad in ("abc", "-3", "0", "1e400"):
        with pytest.raises(ProductEditRefused) as refused:
            edit_product(sessions, sinks_of(workspace), vendor_id, pid, price=bad, active=False)
        assert refused.value.field == "price"
    with sessions() as session:
        product = session.get(Product, pid)
        assert (product.price, product.active) == (Decimal("17.50"), True)
    with pytest.raises(ProductNotFound):
        edit_product(sessions, sinks_of(workspace), vendor_id, product_id("other", "SKU-00100"), in_stock=False)
    with pytest.raises(ProductNotFound):
        edit_product(sessions, sinks_of(workspace), vendor_id, 12345, in_stock=False)


def test_only_the_products_vectors_are_touched(catalog, embedder):
    workspace, sessions, vendor_id = catalog
    from index.vector_store import VectorStore

    store = VectorStore.open(workspace.vectors_dir(embedder.manifest.model_id))
    before = store.count()
    edit_product(sessions, sinks_of(workspace), vendor_id, product_id("acme", "SKU-00003"), active=False)
    store = VectorStore.open(store.directory)
    assert store.count() == before - 1  # one image: the product's own, no other


@pytest.mark.sqlite_only
def test_a_backup_keeps_what_a_deactivated_product_needs_to_come_back(catalog, embedder, tmp_path):
    from catalog.backup import backup

    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=False)
    backup(workspace, tmp_path / "copy")
    copied = Workspace(tmp_path / "copy")
    engine = make_engine(copied.database_url)
    copied_sessions = session_factory(engine)
    try:
        edit_product(copied_sessions, sinks_of(copied), vendor_id, pid, active=True)
        assert _search(copied, copied_sessions, embedder, 7)[0].sku == "SKU-00007"
    finally:
        engine.dispose()


def test_a_reembed_keeps_a_deactivated_product_out_of_search(catalog, embedder):
    from catalog_ingest.reembed import Reembedder

    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=False)
    Reembedder(workspace, sessions, embedder).run()
    assert "SKU-00007" not in [h.sku for h in _search(workspace, sessions, embedder, 7, k=10)]
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=True)
    assert _search(workspace, sessions, embedder, 7)[0].sku == "SKU-00007"


def _live_ids(workspace: Workspace, embedder, pid: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The ids the product has searchable vectors under: any of its possible image and view ids."""
    from index.vector_store import VectorStore

    store = VectorStore.open(workspace.vectors_dir(embedder.manifest.model_id))
    ids = np.asarray([image_id(pid, position) for position in range(MAX_IMAGES_PER_PRODUCT)], np.int64)
    ids = np.concatenate([ids, [view_image_id(pid, slot) for slot in range(MAX_VIEWS_PER_PRODUCT)]])
    found, _ = store.vectors_of(ids)
    return sorted(int(i) for i in ids[found])


def test_a_photo_the_vendor_dropped_while_hidden_does_not_come_back(catalog, embedder, tmp_path):
    """Deactivated with two photos, sent again with one while hidden, reactivated: only the photo the
    product still has is searchable (the kept-aside rows used to bring the dropped one back)."""
    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    rows = make_rows(30)
    rows[7]["images"] = "photos/extra-7.jpg"
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "photos").mkdir()
    (tmp_path / "two" / "photos" / "extra-7.jpg").write_bytes(product_photo(1234))
    ingest_catalog(write_csv(tmp_path / "two" / "c.csv", rows), "acme", embedder, workspace)
    assert _live_ids(workspace, embedder, pid) == sorted([image_id(pid, 0), image_id(pid, 1)])
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=False)
    ingest_catalog(write_csv(tmp_path / "one.csv", make_rows(30)), "acme", embedder, workspace)
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=True)
    assert _live_ids(workspace, embedder, pid) == [image_id(pid, 0)]


def test_a_store_has_one_editor_at_a_time_across_processes(catalog, embedder):
    """Another process holding the store's edit lock (a second web worker mid-edit) makes an edit
    here wait for it: the lock is an flock, not a lock of this process only."""
    workspace, sessions, vendor_id = catalog
    lock = workspace.vectors_dir(embedder.manifest.model_id) / "inactive" / ".edits.lock"
    released = lock.parent / "released-by-the-other-process"
    lock.parent.mkdir(exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib\n"
            "from index.file_lock import exclusive_lock\n"
            "with exclusive_lock(pathlib.Path(sys.argv[1])):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(1.5)\n"
            "    pathlib.Path(sys.argv[2]).touch()\n",
            str(lock),
            str(released),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        edit_product(sessions, sinks_of(workspace), vendor_id, product_id("acme", "SKU-00007"), price="12.00")
        assert released.exists(), "the edit ran while another process held the store's edit lock"
    finally:
        holder.wait(timeout=30)


def test_the_repair_puts_vectors_back_in_line_with_the_flags(catalog, embedder):
    """As a process that died between an edit's vector write and its commit leaves things: a product
    hidden but still active, one shown but still inactive, and vectors kept for a product that is
    gone. The repair (run by the app at start) puts each right, and then finds nothing to do."""
    workspace, sessions, vendor_id = catalog
    hidden_but_active, shown_but_inactive = product_id("acme", "SKU-00007"), product_id("acme", "SKU-00008")
    edit_product(sessions, sinks_of(workspace), vendor_id, hidden_but_active, active=False)
    with sessions() as session:  # its commit never happened
        session.get(Product, hidden_but_active).active = True
        session.get(Product, shown_but_inactive).active = False  # its vectors were never hidden
        session.commit()
    stash = workspace.vectors_dir(embedder.manifest.model_id) / "inactive"
    (stash / f"{product_id('acme', 'SKU-GONE')}.npz").write_bytes((stash / f"{hidden_but_active}.npz").read_bytes())
    assert _live_ids(workspace, embedder, hidden_but_active) == []
    assert _live_ids(workspace, embedder, shown_but_inactive) == [image_id(shown_but_inactive, 0)]

    assert repair_visibility(sessions, sinks_of(workspace)) == {"hidden": 1, "shown": 1, "dropped": 1}
    assert _search(workspace, sessions, embedder, 7)[0].sku == "SKU-00007"
    assert "SKU-00008" not in [h.sku for h in _search(workspace, sessions, embedder, 8, k=10)]
    assert sorted(p.name for p in stash.glob("*.npz")) == [f"{shown_but_inactive}.npz"]
    assert repair_visibility(sessions, sinks_of(workspace)) == {"hidden": 0, "shown": 0, "dropped": 0}


def test_the_app_runs_the_repair_when_it_starts(catalog, embedder):
    from webapp import start_site

    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=False)
    with sessions() as session:  # the deactivation's commit never happened
        session.get(Product, pid).active = True
        session.commit()
    _, server = start_site(workspace)
    try:
        deadline = time.monotonic() + 60
        while _live_ids(workspace, embedder, pid) != [image_id(pid, 0)] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
    assert _live_ids(workspace, embedder, pid) == [image_id(pid, 0)]


def test_a_deactivation_made_while_an_ingest_holds_the_row_is_kept(catalog, embedder, tmp_path):
    """The vendor deactivates a product after an ingest has read its row and before it writes the
    batch: the ingest's write used to put the old `active` back, leaving the product searchable."""
    from catalog_ingest.ingest import IngestOptions

    workspace, sessions, vendor_id = catalog
    pid = product_id("acme", "SKU-00007")
    rows = make_rows(200)
    rows[7]["title"] = "Renamed in the back office"
    batches: list[int] = []

    def deactivate_once(summary) -> None:  # type: ignore[no-untyped-def]
        batches.append(summary.rows)
        if len(batches) == 1:  # the first batch is read from the database, not yet written
            edit_product(sessions, sinks_of(workspace), vendor_id, pid, active=False)

    ingest_catalog(
        write_csv(tmp_path / "big.csv", rows), "acme", embedder, workspace, IngestOptions(on_batch=deactivate_once)
    )
    assert batches and batches[0] < 200
    with sessions() as session:
        product = session.get(Product, pid)
        assert (product.title, product.active) == ("Renamed in the back office", False)
    assert _live_ids(workspace, embedder, pid) == []

"""Customer views over the real index: a confirmed photo finds its product at once and after a
restart, a removed one stops, the cap per product, `write_all_views` into another index, and an
ingest or `vitrine doctor` that leave views alone."""

from __future__ import annotations

import numpy as np
import pytest
from catalogs import make_rows, product_photo, write_csv
from concierge import concierge_over, open_concierge
from sqlalchemy import select

from catalog.catalog_index import CatalogIndex
from catalog.doctor import check_workspace
from catalog.ids import is_customer_view, product_of_image, view_image_id
from catalog.product_search import search_products
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from index.vector_store import VectorStore
from vision.embedder import open_embedder
from vision.micro_batch import load_query_pixels
from workflow import customer_views, pairs
from workflow.errors import Conflict
from workflow.models import AuditEntry, ConfirmedPair, CustomerView
from workflow.uploads import check_photo, store_photo


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


@pytest.fixture(scope="module")
def concierge(embedder, tmp_path_factory: pytest.TempPathFactory):
    concierge = open_concierge(tmp_path_factory.mktemp("views"), embedder)
    yield concierge
    concierge.close()


def _not_first(concierge, photo: bytes) -> int:  # type: ignore[no-untyped-def]
    """A product the photo does not find first (nor second): one a view must lift to the top."""
    hits = concierge.hits(photo, k=10)
    return hits[5].product_id


def test_a_view_finds_its_product_at_once_after_a_restart_and_not_after_removal(concierge) -> None:
    request_id = concierge.request(product_photo(401))
    photo = concierge.stored_photo(request_id)
    product = _not_first(concierge, photo)
    assert concierge.hits(photo)[0].product_id != product
    concierge.claim(request_id)
    offer_ids = concierge.send(request_id, [product])
    outcomes = customer_views.add_views_for_offers(
        concierge.sessions, concierge.search, concierge.workspace, offer_ids, concierge.alice
    )
    assert [o.status for o in outcomes] == ["added"]
    view_image = outcomes[0].image_id
    assert view_image == view_image_id(product, 0)

    first = concierge.hits(photo)[0]
    assert (first.product_id, first.image_id) == (product, view_image)  # through the view, at once
    assert is_customer_view(first.image_id) and first.score > 0.999

    # Persisted: a fresh process (a restart) opens the saved index and replays the store.
    restarted = concierge_over(concierge.workspace)
    try:
        again = restarted.hits(photo)[0]
        assert (again.product_id, again.image_id) == (product, view_image)
    finally:
        restarted.close()

    # Sending again adds no second view; the audit trail names who added it.
    assert [
        o.status
        for o in customer_views.add_views_for_offers(
            concierge.sessions, concierge.search, concierge.workspace, offer_ids, concierge.alice
        )
    ] == ["exists"]
    with concierge.sessions() as session:
        added = session.scalars(
            select(AuditEntry).where(AuditEntry.request_id == request_id, AuditEntry.action == "customer_view.added")
        ).all()
    assert len(added) == 1 and added[0].actor == "operator:alice"

    customer_views.remove_view(
        concierge.sessions,
        customer_views.ServingSink(concierge.search),
        outcomes[0].view_id,
        concierge.alice,
        request_id,
    )
    gone = concierge.hits(photo, k=10)
    assert view_image not in {h.image_id for h in gone}
    assert gone[0].product_id != product
    with concierge.sessions() as session:
        view = session.get(CustomerView, outcomes[0].view_id)
        assert view.removed_at is not None and view.removed_by_id == concierge.alice.id
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.request_id == request_id)).all()
    assert "customer_view.removed" in actions
    with pytest.raises(Conflict):
        customer_views.remove_view(
            concierge.sessions, customer_views.ServingSink(concierge.search), outcomes[0].view_id, concierge.alice
        )
    restarted = concierge_over(concierge.workspace)
    try:
        assert view_image not in {h.image_id for h in restarted.hits(photo, k=10)}
    finally:
        restarted.close()
    # A removed view is never added again.
    assert [
        o.status
        for o in customer_views.add_views_for_offers(
            concierge.sessions, concierge.search, concierge.workspace, offer_ids, concierge.alice
        )
    ] == ["exists"]


def test_a_failing_index_write_loses_the_view_not_the_offer(concierge, monkeypatch) -> None:
    request_id = concierge.request(product_photo(402))
    concierge.claim(request_id)
    product = _not_first(concierge, concierge.stored_photo(request_id))
    offer_ids = concierge.send(request_id, [product])

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(concierge.search, "write_vectors", broken)
    assert (
        customer_views.add_views_for_offers(
            concierge.sessions, concierge.search, concierge.workspace, offer_ids, concierge.alice
        )
        == []
    )
    with concierge.sessions() as session:
        assert not session.scalars(select(CustomerView).where(CustomerView.product_id == product)).all()


def _pair(concierge, product: int, seed: int, label: str = "offered") -> int:  # type: ignore[no-untyped-def]
    photo = check_photo(product_photo(seed), 10**7, 10**7)
    store_photo(concierge.workspace, photo)
    with concierge.sessions() as session:
        pair = pairs.record_pair(
            session,
            photo_sha256=photo.sha256,
            product_id=product,
            vendor="acme",
            sku="?",
            label=label,
            source="import",
        )
        session.commit()
        return pair.id


def test_the_cap_replaces_the_oldest_view_no_customer_accepted(concierge) -> None:
    product = concierge.product("acme", "SKU-00020")
    target = customer_views.offline_target(concierge.workspace, concierge.search.embedder.embedder)
    first = [_pair(concierge, product, 500 + i) for i in range(16)]
    accepted = _pair(concierge, product, 500, "accepted")  # the first photo is also accepted
    outcomes = customer_views.add_views(concierge.sessions, target, concierge.workspace, [*first, accepted], "test")
    assert [o.status for o in outcomes] == ["added"] * 16 + ["exists"]
    assert sorted(o.image_id for o in outcomes[:16]) == [view_image_id(product, s) for s in range(16)]

    seventeenth = _pair(concierge, product, 600)
    (replacing,) = customer_views.add_views(concierge.sessions, target, concierge.workspace, [seventeenth], "test")
    # The oldest view is accepted and stays; the second oldest gives its slot up.
    assert replacing.status == "added" and replacing.replaced_view_id == outcomes[1].view_id
    assert replacing.image_id == outcomes[1].image_id
    with concierge.sessions() as session:
        live = customer_views.active_views(session, product)
        replaced = session.get(CustomerView, outcomes[1].view_id)
    assert len(live) == 16 and outcomes[0].view_id in {v.id for v in live}
    assert replaced.removed_at is not None and replaced.image_id is None and replaced.removed_by_id is None
    store = VectorStore.open(concierge.search.index.store.directory)
    found, vectors = store.vectors_of([replacing.image_id])
    expected = check_photo(product_photo(600), 10**7, 10**7)
    assert found[0]  # the slot's vector is the new photo's now
    new_vector = concierge.search.embedder.embedder.embed_pixels(
        load_query_pixels(expected.jpeg, concierge.search.embedder.embedder)[None]
    )[0]
    assert float(vectors[0] @ new_vector) > 0.999

    # Two at once (one batch): the next two oldest unaccepted views make way, in order.
    two = customer_views.add_views(
        concierge.sessions,
        target,
        concierge.workspace,
        [_pair(concierge, product, 610), _pair(concierge, product, 611)],
        "test",
    )
    assert [(o.status, o.replaced_view_id) for o in two] == [
        ("added", outcomes[2].view_id),
        ("added", outcomes[3].view_id),
    ]

    # Every view accepted: an offered pair finds no slot, an accepted one replaces the oldest.
    with concierge.sessions() as session:
        for view in customer_views.active_views(session, product):
            sha = view.photo_sha256
            if not session.scalar(
                select(ConfirmedPair.id).where(ConfirmedPair.photo_sha256 == sha, ConfirmedPair.label == "accepted")
            ):
                pairs.record_pair(
                    session,
                    photo_sha256=sha,
                    product_id=product,
                    vendor="acme",
                    sku="?",
                    label="accepted",
                    source="import",
                )
        session.commit()
    (full,) = customer_views.add_views(
        concierge.sessions, target, concierge.workspace, [_pair(concierge, product, 700)], "test"
    )
    assert full.status == "full"
    (stronger,) = customer_views.add_views(
        concierge.sessions, target, concierge.workspace, [_pair(concierge, product, 701, "accepted")], "test"
    )
    assert stronger.status == "added" and stronger.replaced_view_id == outcomes[0].view_id


def test_write_all_views_fills_another_index_with_the_live_views(concierge, embedder, tmp_path) -> None:
    with concierge.sessions() as session:
        live = customer_views.active_views(session)
        removed = session.scalars(select(CustomerView).where(CustomerView.removed_at.is_not(None))).all()
    assert live and removed
    other = CatalogIndex(Workspace(tmp_path / "other"), embedder.manifest.model_id, embedder.manifest.embed_dim)
    try:
        written = customer_views.write_all_views(other, embedder, concierge.sessions, concierge.workspace)
        assert written == len(live)
        assert sorted(other.index.ids().tolist()) == sorted(v.image_id for v in live)
        view = live[-1]
        photo = (concierge.workspace.thumbnail_path(view.photo_sha256)).read_bytes()
        query = embedder.embed_pixels(load_query_pixels(photo, embedder, view.crop)[None])[0]
        (hit,) = search_products(other, concierge.sessions, query, k=1)
        assert (hit.image_id, hit.product_id) == (view.image_id, product_of_image(view.image_id))
        assert other.index.attributes_of(view.image_id).vendor in ("acme", "globex")
        assert customer_views.write_all_views(other, embedder, concierge.sessions, concierge.workspace) == written
        assert len(other.index) == written  # written again: replaced, not duplicated
    finally:
        other.close()


def test_an_ingest_and_the_doctor_leave_views_alone(concierge, embedder, tmp_path) -> None:
    store = VectorStore.open(concierge.search.index.store.directory)
    views_before = np.asarray([i for i in store.live_ids().tolist() if is_customer_view(i)])
    assert len(views_before)
    folder = tmp_path / "acme"
    folder.mkdir()
    ingest_catalog(write_csv(folder / "catalog.csv", make_rows(40)), "acme", embedder, concierge.workspace)
    store = VectorStore.open(concierge.search.index.store.directory)
    views_after = np.asarray([i for i in store.live_ids().tolist() if is_customer_view(i)])
    assert sorted(views_after.tolist()) == sorted(views_before.tolist())
    report = check_workspace(concierge.workspace)
    assert report["healthy"], report
    assert report["models"][0]["customer_views"] == len(views_after)

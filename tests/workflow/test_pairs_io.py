"""`vitrine pairs export|import`: pairs and their photos out of one installation and into a fresh one,
the same rows, nothing added by a second import, bad rows rejected with reasons, views made on import."""

from __future__ import annotations

import csv
import json

import pytest
from catalogs import product_photo
from concierge import open_concierge
from delivery_support import DELIVERY
from search_catalog import build_workspace
from sqlalchemy import func, select
from typer.testing import CliRunner

from catalog.catalog_index import CatalogIndex
from catalog.db import make_engine, session_factory
from catalog.ids import is_customer_view
from catalog.product_search import search_products
from cli.main import app
from vision.embedder import open_embedder
from vision.micro_batch import load_query_pixels
from workflow import offers_service, pairs
from workflow.models import ConfirmedPair, CustomerRequest, CustomerView
from workflow.payments import APPROVED, TestPaymentProvider

runner = CliRunner()


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


@pytest.fixture(scope="module")
def source(embedder, tmp_path_factory: pytest.TempPathFactory):
    """An installation where two requests were served: offers sent, one accepted, "none of these" on another."""
    concierge = open_concierge(tmp_path_factory.mktemp("source"), embedder)
    first = concierge.request(product_photo(801))
    concierge.claim(first)
    with concierge.sessions() as session:
        shown = [c.product_id for c in session.get(CustomerRequest, first).candidates]
        token = concierge.token_of(first)
    offer_ids = concierge.send(first, shown[:2])
    offers_service.accept_offer(
        concierge.sessions, TestPaymentProvider(), token, offer_ids[0], APPROVED, "k", delivery=DELIVERY
    )
    second = concierge.request(product_photo(802))
    concierge.claim(second)
    pairs.reject_shown(concierge.sessions, second, concierge.alice)
    yield concierge
    concierge.close()


def _json(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _rows(sessions) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return sorted(session.execute(select(ConfirmedPair.vendor, ConfirmedPair.sku, ConfirmedPair.label)).all())


def _count(sessions, model) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_export_then_import_into_a_fresh_installation(source, embedder, tiny, tmp_path, monkeypatch) -> None:
    model = str(tiny[0])
    monkeypatch.setenv("VITRINE_HOME", str(source.workspace.home))
    out = tmp_path / "export" / "pairs.csv"
    exported = _json(runner.invoke(app, ["pairs", "export", str(out), "--json"]))
    expected = _rows(source.sessions)
    assert exported["pairs"] == len(expected) and exported["photos"] == 2 and not exported["missing_photos"]
    with out.open(newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["photo", "vendor", "sku", "label", "created_at", "request"]
    for photo, *_ in lines[1:]:
        assert photo.startswith("photos/") and (out.parent / photo).is_file()  # relative to the CSV
    assert {row[3] for row in lines[1:]} == {"offered", "accepted", "rejected"}

    # Importing the export into the installation it came from adds nothing.
    again = _json(runner.invoke(app, ["pairs", "import", str(out), "--no-views", "--json"]))
    assert (again["imported"], again["already_present"], again["rejected"]) == (0, len(expected), 0)

    fresh = build_workspace(tmp_path / "fresh", embedder)
    monkeypatch.setenv("VITRINE_HOME", str(fresh.home))
    engine = make_engine(fresh.database_url)
    sessions = session_factory(engine)
    try:
        first = _json(runner.invoke(app, ["pairs", "import", str(out), "--model", model, "--json"]))
        assert (first["rows"], first["imported"], first["rejected"]) == (len(expected), len(expected), 0)
        assert _rows(sessions) == expected
        with sessions() as session:
            imported = session.scalars(select(ConfirmedPair)).all()
        assert {(p.source, p.request_id, p.offer_id) for p in imported} == {("import", None, None)}
        # Two positive (photo, product) pairs (one both offered and accepted) become two views.
        assert first["views"] == {"added": 2, "exists": 1}

        second = _json(runner.invoke(app, ["pairs", "import", str(out), "--model", model, "--json"]))
        assert (second["imported"], second["already_present"]) == (0, len(expected))
        assert second["views"] == {"exists": 3}
        assert _rows(sessions) == expected and _count(sessions, CustomerView) == 2

        # The imported views are in the fresh installation's index: its own photo finds the product.
        with sessions() as session:
            view = session.scalars(select(CustomerView)).first()
        photo = fresh.thumbnail_path(view.photo_sha256).read_bytes()
        query = embedder.embed_pixels(load_query_pixels(photo, embedder, view.crop)[None])[0]
        index = CatalogIndex(fresh, embedder.manifest.model_id, embedder.manifest.embed_dim)
        try:
            (hit,) = search_products(index, sessions, query, k=1)
        finally:
            index.close()
        assert hit.image_id == view.image_id and is_customer_view(hit.image_id)
        assert hit.product_id == view.product_id
    finally:
        engine.dispose()


def test_bad_rows_are_rejected_with_reasons_and_good_rows_land(source, embedder, tiny, tmp_path, monkeypatch) -> None:
    fresh = build_workspace(tmp_path / "fresh", embedder)
    monkeypatch.setenv("VITRINE_HOME", str(fresh.home))
    folder = tmp_path / "incoming"
    (folder / "shots").mkdir(parents=True)
    (folder / "shots" / "good.jpg").write_bytes(product_photo(901))
    (folder / "shots" / "not-a-photo.jpg").write_bytes(b"%PDF-1.4 this is no image")
    absolute = tmp_path / "elsewhere.jpg"
    absolute.write_bytes(product_photo(902))
    rows = [
        ["shots/good.jpg", "acme", "SKU-00003"],
        ["shots/not-a-photo.jpg", "acme", "SKU-00004"],
        ["shots/missing.jpg", "acme", "SKU-00005"],
        ["shots/good.jpg", "acme", "SKU-99999"],
        ["", "acme", "SKU-00006"],
        [str(absolute), "globex", "SKU-00041"],
    ]
    target = folder / "pairs.csv"
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["photo", "vendor", "sku"])
        writer.writerows(rows)
    data = _json(runner.invoke(app, ["pairs", "import", str(target), "--no-views", "--json"]))
    assert (data["rows"], data["imported"], data["rejected"]) == (6, 2, 4)
    reasons = {r["line"]: r["reason"] for r in data["rejects"]}
    assert set(reasons) == {3, 4, 5, 6}
    assert reasons[3].startswith("photo:") and "image" in reasons[3].lower()
    assert reasons[4] == "photo: file not found"
    assert "unknown product" in reasons[5] and "SKU-99999" in reasons[5]
    assert reasons[6] == "missing photo"
    assert data["views"] == {}
    engine = make_engine(fresh.database_url)
    try:
        sessions = session_factory(engine)
        assert _rows(sessions) == [("acme", "SKU-00003", "offered"), ("globex", "SKU-00041", "offered")]
        assert _count(sessions, CustomerView) == 0
    finally:
        engine.dispose()
    missing_column = tmp_path / "two.csv"
    missing_column.write_text("photo,vendor\nshots/good.jpg,acme\n")
    refused = runner.invoke(app, ["pairs", "import", str(missing_column), "--no-views"])
    assert refused.exit_code == 2 and "sku" in refused.output

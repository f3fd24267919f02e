"""Catalog ingest: formats, hostile rows, images from folders, zips and URLs, re-ingest, sync, dedup."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from catalogs import make_rows, product_photo, write_csv, write_jsonl, write_parquet
from images import png_header_only
from shared_data import REPO_ROOT
from sqlalchemy import func, select

from catalog.catalog_index import CatalogIndex
from catalog.db import Product, ProductImage, make_engine, session_factory
from catalog.doctor import check_workspace
from catalog.product_search import search_products
from catalog.workspace import Workspace
from catalog_ingest.errors import CatalogError
from catalog_ingest.ingest import IngestOptions, ingest_catalog
from catalog_ingest.mapping import ColumnMapping
from index.filters import ItemAttributes
from vision.embedder import open_embedder
from vision.pipeline import load_pixels

MAPPINGS = REPO_ROOT / "catalog_ingest" / "mappings"


@pytest.fixture(scope="module")
def embedder(tiny, store):
    return open_embedder("test-tiny", "onnx", store)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "home")


def _products(workspace: Workspace) -> dict[str, Product]:
    engine = make_engine(workspace.database_url)
    with session_factory(engine)() as session:
        rows = {p.sku: p for p in session.scalars(select(Product))}
    engine.dispose()
    return rows


def _search(workspace: Workspace, embedder, photo: bytes, k: int = 3):
    engine = make_engine(workspace.database_url)
    index = CatalogIndex(workspace, embedder.manifest.model_id, embedder.manifest.embed_dim)
    query = embedder.embed_pixels(load_pixels(photo, embedder.manifest.preprocess)[None])[0]
    hits = search_products(index, session_factory(engine), query, k)
    index.close()
    engine.dispose()
    return hits


def test_good_csv_becomes_searchable_products(tmp_path: Path, workspace, embedder):
    rows = make_rows(40)
    summary = ingest_catalog(write_csv(tmp_path / "c.csv", rows), "acme", embedder, workspace)
    data = summary.to_json()
    assert (data["rows"], data["accepted"], data["rejected"], data["images_embedded"]) == (40, 40, 0, 40)
    products = _products(workspace)
    assert len(products) == 40 and str(products["SKU-00007"].price) == "17.50"
    assert products["SKU-00004"].in_stock is False and products["SKU-00004"].category == "lamps"
    hits = _search(workspace, embedder, product_photo(7))
    assert hits[0].sku == "SKU-00007" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert check_workspace(workspace)["healthy"]


@pytest.mark.sqlite_only
def test_the_database_is_a_sqlite_file_in_wal_mode(tmp_path: Path, workspace, embedder):
    """WAL: a server reads while an ingest writes. The file says so to any other connection."""
    import sqlite3
    from contextlib import closing

    ingest_catalog(write_csv(tmp_path / "c.csv", make_rows(2)), "acme", embedder, workspace)
    with closing(sqlite3.connect(workspace.home / "vitrine.db")) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT count(*) FROM products").fetchone()[0] == 2


HOSTILE = [
    ({"sku": ""}, "sku", "missing"),
    ({"price": "abc"}, "price", "not a number"),
    ({"price": "-5"}, "price", "negative"),
    ({"price": "inf"}, "price", "not a finite number"),
    ({"price": "NaN"}, "price", "not a finite number"),
    ({"price": "1e+16"}, "price", "above the largest price"),
    ({"price": "12.5.3"}, "price", "not a number"),
    ({"category": "c" * 301}, "category", "longer than 300"),
    ({"brand": "b" * 201}, "brand", "longer than 200"),
    ({"title": "x" * 301}, "title", "longer than 300"),
    ({"currency": "euros"}, "currency", "3-letter"),
    ({"in_stock": "perhaps"}, "in_stock", "yes/no"),
    ({"image": "photos/none.jpg"}, "image", "no such file"),
    ({"image": "../outside.jpg"}, "image", "inside the catalog"),
    ({"image": "/etc/passwd"}, "image", "inside the catalog"),
    ({"image": "file:///etc/passwd"}, "image", "only http(s)"),
    ({"image": "escape.jpg"}, "image", "links outside"),
    ({"image": "notes.jpg"}, "image", "not an image"),
    ({"image": "bomb.png"}, "image", "too many pixels"),
    ({"image": "cut.jpg"}, "image", "truncated"),
    ({"url": "javascript:alert(1)"}, "url", "http(s)"),
]


def test_hostile_rows_are_reported_and_never_sink_good_ones(tmp_path: Path, workspace, embedder):
    folder = tmp_path / "cat"
    folder.mkdir()
    (tmp_path / "outside.jpg").write_bytes(product_photo(1))
    (folder / "escape.jpg").symlink_to(tmp_path / "outside.jpg")
    (folder / "notes.jpg").write_text("this is not a photo")
    (folder / "bomb.png").write_bytes(png_header_only(50_000, 50_000))
    (folder / "cut.jpg").write_bytes(product_photo(2, size=400)[:3000])
    rows = make_rows(len(HOSTILE) + 10)
    for row, (change, _, _) in zip(rows, HOSTILE, strict=False):
        row.update(change)
    rows.append(dict(rows[-1]))  # a duplicate sku: reported, the first kept
    summary = ingest_catalog(write_csv(folder / "c.csv", rows), "acme", embedder, workspace).to_json()
    assert summary["accepted"] == 10 and summary["rows"] == len(rows)
    by_row = {r["row"]: r for r in summary["rejects"]}
    for number, (_, field, words) in enumerate(HOSTILE, start=1):
        assert by_row[number]["field"] == field, (number, by_row[number])
        assert words in by_row[number]["reason"], (number, by_row[number])
    assert summary["duplicate_skus"][0]["sku"] == rows[-1]["sku"]
    assert set(_products(workspace)) == {r["sku"] for r in rows[len(HOSTILE) :]}
    assert summary["rejected"] == len(HOSTILE) + 1 and len(summary["rejects"]) == len(HOSTILE) + 1
    by_reason = summary["rejected_by_reason"]
    assert by_reason["price: 'abc' is not a number"] == 1 and by_reason["sku: duplicate sku"] == 1
    assert sum(by_reason.values()) == len(HOSTILE) + 1
    assert summary["images_embedded"] == 10 and summary["duration_s"] > 0
    assert summary["images_per_s"] == pytest.approx(10 / summary["duration_s"], rel=0.05)


def test_csv_dialects_bom_semicolons_tabs_quoted_newlines_bad_records(tmp_path: Path, workspace, embedder):
    rows = make_rows(6)
    rows[1]["title"] = 'Two-line\ntitle, with "quotes"'
    write_csv(tmp_path / "semi.csv", rows, delimiter=";", bom=True)
    first = ingest_catalog(tmp_path / "semi.csv", "acme", embedder, workspace).to_json()
    assert first["accepted"] == 6 and _products(workspace)["SKU-00001"].title == 'Two-line title, with "quotes"'
    tsv = tmp_path / "tabs.tsv"
    write_csv(tsv, make_rows(3, start=10), delimiter="\t")
    assert ingest_catalog(tsv, "tabs", embedder, workspace).to_json()["accepted"] == 3
    piped = [{**row, "notes (internal, not shown)": "x"} for row in make_rows(3, start=30)]  # a comma in a header
    write_csv(tmp_path / "pipes.csv", piped, delimiter="|")
    assert ingest_catalog(tmp_path / "pipes.csv", "pipes", embedder, workspace).to_json()["accepted"] == 3
    broken = tmp_path / "broken.csv"
    write_csv(broken, make_rows(4, start=20))
    lines = broken.read_bytes().split(b"\n")
    lines[2] = lines[2].rstrip(b"\r") + b",extra,fields\r"  # the csv module ends lines with \r\n
    lines[3] = lines[3].replace(b"Product", b"Pr\xff\xfeoduct")
    broken.write_bytes(b"\n".join(lines))
    summary = ingest_catalog(broken, "broken", embedder, workspace).to_json()
    assert summary["accepted"] == 2
    reasons = " | ".join(r["reason"] for r in summary["rejects"])
    assert "malformed CSV record" in reasons and "not valid UTF-8" in reasons


def test_jsonl_parquet_and_zip_catalogs(tmp_path: Path, workspace, embedder):
    (tmp_path / "j").mkdir()
    rows = make_rows(5)
    jsonl = write_jsonl(tmp_path / "j" / "c.jsonl", rows)
    with jsonl.open("a") as handle:
        handle.write("{not json\n[1, 2]\n")
    summary = ingest_catalog(jsonl, "jsonl", embedder, workspace).to_json()
    assert summary["accepted"] == 5 and {r["row"] for r in summary["rejects"]} == {6, 7}
    (tmp_path / "p").mkdir()
    parquet = write_parquet(tmp_path / "p" / "c.parquet", make_rows(5, start=100))
    assert ingest_catalog(parquet, "parquet", embedder, workspace).to_json()["accepted"] == 5
    archive = tmp_path / "catalog.zip"
    zrows = make_rows(4, start=200)
    zrows[3]["image"] = "../../evil.jpg"
    write_csv(tmp_path / "tmp.csv", zrows)
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("catalog/c.csv", (tmp_path / "tmp.csv").read_text())
        for row in zrows[:3]:
            handle.writestr(row["image"], (tmp_path / row["image"]).read_bytes())
    summary = ingest_catalog(archive, "zipped", embedder, workspace).to_json()
    assert summary["accepted"] == 3 and "inside the catalog" in summary["rejects"][0]["reason"]


def test_a_zipped_parquet_catalog_is_streamed_from_a_scratch_copy(tmp_path: Path, workspace, embedder, monkeypatch):
    import tempfile

    import pyarrow.parquet as pq

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    rows = make_rows(1200, start=300)
    (tmp_path / "z").mkdir()
    parquet = write_parquet(tmp_path / "z" / "c.parquet", rows)
    pq.write_table(pq.read_table(parquet), parquet, row_group_size=500)  # several row groups to seek between
    archive = tmp_path / "parquet.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        handle.write(parquet, "c.parquet")
        for row in rows:
            handle.write(tmp_path / "z" / row["image"], row["image"])
    from catalog_ingest.readers import open_catalog

    opened = open_catalog(archive)
    assert opened.scratch is not None and opened.scratch.parent == scratch  # a file to seek in, not bytes in memory
    assert opened.scratch.stat().st_size == parquet.stat().st_size
    opened.close()
    assert not list(scratch.iterdir())
    summary = ingest_catalog(archive, "zipped-parquet", embedder, workspace).to_json()
    assert (summary["rows"], summary["accepted"]) == (1200, 1200)
    assert not list(scratch.iterdir())  # the scratch copy went with the run


def test_whole_file_problems_stop_before_anything_is_written(tmp_path: Path, workspace, embedder):
    (tmp_path / "c.xlsx").write_bytes(b"PK not really")
    with pytest.raises(CatalogError, match="Unknown catalog format"):
        ingest_catalog(tmp_path / "c.xlsx", "acme", embedder, workspace)
    rows = [{k: v for k, v in r.items() if k != "price"} for r in make_rows(3)]
    with pytest.raises(CatalogError, match=r"lacks required column.*price"):
        ingest_catalog(write_csv(tmp_path / "c.csv", rows), "acme", embedder, workspace)
    assert not (workspace.home / "vitrine.db").exists() and not (workspace.home / "vectors").exists()


def test_a_vendor_name_longer_than_its_column_is_refused_before_anything_is_written(
    tmp_path: Path, workspace, embedder
):
    """SQLite would store 201 characters in VARCHAR(200); PostgreSQL refuses them mid-ingest. Both: a clear error."""
    catalog = write_csv(tmp_path / "c.csv", make_rows(2))
    for vendor in ("v" * 201, "  "):
        with pytest.raises(CatalogError, match="vendor name is 1-200 characters"):
            ingest_catalog(catalog, vendor, embedder, workspace)
    assert ingest_catalog(catalog, "v" * 200, embedder, workspace).accepted == 2


def test_reingest_is_idempotent_updates_only_what_changed_and_syncs(tmp_path: Path, workspace, embedder):
    rows = make_rows(12)
    catalog = write_csv(tmp_path / "c.csv", rows)
    ingest_catalog(catalog, "acme", embedder, workspace)
    again = ingest_catalog(catalog, "acme", embedder, workspace).to_json()
    assert (again["unchanged"], again["accepted"], again["images_embedded"]) == (12, 0, 0)
    rows[0]["price"] = "99.99"  # metadata only: no re-embedding
    (tmp_path / rows[1]["image"]).write_bytes(product_photo(9999))  # same path, new photo
    write_csv(catalog, rows)
    changed = ingest_catalog(catalog, "acme", embedder, workspace).to_json()
    assert (changed["updated"], changed["unchanged"], changed["images_embedded"]) == (2, 10, 1)
    assert str(_products(workspace)["SKU-00000"].price) == "99.99"
    assert _search(workspace, embedder, product_photo(9999))[0].sku == "SKU-00001"
    write_csv(catalog, rows[:9])
    synced = ingest_catalog(catalog, "acme", embedder, workspace, IngestOptions(sync=True)).to_json()
    assert synced["removed"] == 3 and len(_products(workspace)) == 9
    rows[2]["price"] = "twelve"  # still listed, but rejected this time: --sync must keep what it had
    write_csv(catalog, rows[:9])
    typo = ingest_catalog(catalog, "acme", embedder, workspace, IngestOptions(sync=True)).to_json()
    assert (typo["removed"], typo["rejected"], typo["unchanged"]) == (0, 1, 8)
    assert str(_products(workspace)["SKU-00002"].price) == "12.50" and len(_products(workspace)) == 9
    report = check_workspace(workspace)
    assert report["healthy"] and report["models"][0]["vectors_in_store"] == 9


def test_several_images_roll_up_and_duplicates_are_stored_once(tmp_path: Path, workspace, embedder):
    rows = make_rows(6)
    rows[0]["images"] = "photos/p00001.jpg|photos/p00002.jpg"  # product 0 also shows the photos of 1 and 2
    rows[3]["image"] = rows[4]["image"]  # exact duplicate image across two products
    summary = ingest_catalog(write_csv(tmp_path / "c.csv", rows), "acme", embedder, workspace).to_json()
    assert summary["accepted"] == 6
    assert summary["images_reused"] >= 1  # the same bytes embedded once
    assert {d["sku"] for d in summary["near_duplicates"]} & {
        "SKU-00000",
        "SKU-00001",
        "SKU-00002",
        "SKU-00003",
        "SKU-00004",
    }
    hits = _search(workspace, embedder, product_photo(1), k=6)
    skus = [h.sku for h in hits]
    assert len(skus) == len(set(skus))  # each product once, by its best image
    assert set(skus[:2]) == {"SKU-00000", "SKU-00001"}
    thumbnails = list(workspace.images_dir.rglob("*.jpg"))
    engine = make_engine(workspace.database_url)
    with session_factory(engine)() as session:
        distinct = session.scalar(select(func.count(func.distinct(ProductImage.sha256))))
        assert session.scalar(select(func.count(ProductImage.id))) == 8
    assert len(thumbnails) == distinct == 5  # p3 shares p4's photo


def test_extra_image_columns_each_count(tmp_path: Path, workspace, embedder):
    """Extra photos in numbered columns (no mapping needed) or in mapped columns, JSON lists too."""
    rows = make_rows(4)
    for row in rows:
        row["image_2"], row["image_3"] = "", ""
    rows[0]["image_2"], rows[0]["image_3"] = "photos/p00101.jpg", "photos/p00102.jpg"
    rows[1]["image_3"] = "photos/p00103.jpg"
    for i in (101, 102, 103, 104, 105):
        (tmp_path / f"photos/p{i:05d}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / f"photos/p{i:05d}.jpg").write_bytes(product_photo(i))
    ingest_catalog(write_csv(tmp_path / "c.csv", rows), "acme", embedder, workspace)
    engine = make_engine(workspace.database_url)

    def image_sources(sku: str) -> list[str]:
        with session_factory(engine)() as session:
            product = session.scalar(select(Product).where(Product.sku == sku))
            return [image.source for image in sorted(product.images, key=lambda i: i.position)]

    assert image_sources("SKU-00000") == ["photos/p00000.jpg", "photos/p00101.jpg", "photos/p00102.jpg"]
    assert image_sources("SKU-00001") == ["photos/p00001.jpg", "photos/p00103.jpg"]
    assert _search(workspace, embedder, product_photo(102))[0].sku == "SKU-00000"

    mapped = [
        {"ref": f"M{i}", "name": f"Item {i}", "cost": "5", "cur": "EUR", "photo": f"photos/p0000{i}.jpg"}
        for i in range(2)
    ]
    mapped[0]["alt_a"], mapped[0]["alt_b"] = '["photos/p00104.jpg"]', "photos/p00105.jpg"
    mapped[1]["alt_a"], mapped[1]["alt_b"] = "", ""
    mapping = ColumnMapping(
        columns={
            "sku": ("ref",),
            "title": ("name",),
            "price": ("cost",),
            "currency": ("cur",),
            "image": ("photo",),
            "images": ("alt_a", "alt_b"),
        }
    )
    ingest_catalog(write_csv(tmp_path / "m.csv", mapped), "globex", embedder, workspace, IngestOptions(mapping=mapping))
    assert image_sources("M0") == ["photos/p00000.jpg", "photos/p00104.jpg", "photos/p00105.jpg"]
    assert image_sources("M1") == ["photos/p00001.jpg"]
    engine.dispose()


def test_the_real_flipkart_catalog_through_its_mapping(workspace, embedder, flipkart):
    mapping = ColumnMapping.load(MAPPINGS / "flipkart.toml")
    summary = ingest_catalog(
        flipkart / "flipkart_com-ecommerce_sample_1050.csv",
        "flipkart",
        embedder,
        workspace,
        IngestOptions(mapping=mapping),
    ).to_json()
    print(json.dumps({k: v for k, v in summary.items() if k not in ("rejects", "near_duplicates")}))
    # Every row with a photo is a product (the one without a price column has it in its description);
    # the three rows whose photo is missing are reported, and nothing else is.
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (1050, 1047, 3)
    assert all(r["field"] == "image" and "no such file" in r["reason"] for r in summary["rejects"])
    assert summary["index"]["count"] == 1047 and summary["images_embedded"] + summary["images_reused"] == 1047
    products = _products(workspace)
    giant = "5518124b75d6c6dfee4c2e4c0cfa716a.jpg"  # 93 megapixels
    engine = make_engine(workspace.database_url)
    with session_factory(engine)() as session:
        big = session.scalar(select(ProductImage).where(ProductImage.source == giant))
        assert big is not None and big.width * big.height < 3_000_000  # embedded through the draft path
    assert products[big_sku(workspace, giant)].category.count(">") == 1
    towel = products["BTWEG6SHXTDB2A2Y"]  # no price column filled: the description's "Price: Rs. 299"
    assert (str(towel.price), towel.currency) == ("299.00", "INR")
    photo = (flipkart / "images" / "64d5d4a258243731dc7bbb1eef49ad74.jpg").read_bytes()
    hits = _search(workspace, embedder, photo, k=5)
    assert hits[0].score == pytest.approx(1.0, abs=1e-3) and "BTWEG6SHXTDB2A2Y" in [
        hit.sku for hit in hits if hit.score > 0.999
    ]
    assert check_workspace(workspace)["healthy"]


def big_sku(workspace: Workspace, source: str) -> str:
    engine = make_engine(workspace.database_url)
    with session_factory(engine)() as session:
        image = session.scalar(select(ProductImage).where(ProductImage.source == source))
        return session.get(Product, image.product_id).sku


def test_model_mismatch_is_refused(tmp_path: Path, workspace, embedder):
    from index.errors import IndexMismatch
    from index.vector_store import VectorStore

    VectorStore(workspace.vectors_dir(embedder.manifest.model_id), "another-model", 8)
    with pytest.raises(IndexMismatch):
        ingest_catalog(write_csv(tmp_path / "c.csv", make_rows(2)), "acme", embedder, workspace)


def test_vectors_are_unit_and_indexed_with_filters(tmp_path: Path, workspace, embedder):
    ingest_catalog(write_csv(tmp_path / "c.csv", make_rows(30)), "acme", embedder, workspace)
    index = CatalogIndex(workspace, embedder.manifest.model_id, embedder.manifest.embed_dim).index
    from index.filters import SearchFilter

    query = embedder.embed_pixels(load_pixels(product_photo(3), embedder.manifest.preprocess)[None])[0]
    lamps = index.search(query, 30, SearchFilter.of(categories=["lamps"], in_stock=True)).hits()
    assert len(lamps) == len([i for i in range(30) if i % 3 == 1 and i % 4])
    assert np.allclose(np.linalg.norm(index.vector_of(lamps[0][0])), 1.0, atol=1e-5)
    assert os.environ["VITRINE_HOME"] != str(workspace.home)


def test_catalog_index_leaves_flat_as_soon_as_it_outgrows_it(tmp_path: Path, monkeypatch):
    """A large ingest must not keep a flat index (a second full copy of every vector) until the end."""
    import catalog.catalog_index as catalog_index_module
    import index.planner as planner

    monkeypatch.setattr(planner, "FLAT_MAX", 1000)
    monkeypatch.setattr(catalog_index_module, "FLAT_MAX", 1000)
    workspace = Workspace(tmp_path / "home")
    catalog_index = CatalogIndex(workspace, "model@x", 16)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, 3000, 500):
        catalog_index.write(np.arange(start, start + 500), vectors[start : start + 500], [ItemAttributes()] * 500)
        expected = "flat" if start + 500 <= 1000 else "ivf-sq8"
        assert catalog_index.index.spec.kind == expected, start
    assert len(catalog_index.index) == 3000
    assert catalog_index.index.search(vectors[2999], 1).hits()[0][0] == 2999
    spills = list((workspace.home / "tmp").iterdir())
    assert len(spills) == 1  # the flat index's spill file went with it
    catalog_index.save()
    catalog_index.close()
    assert not list((workspace.home / "tmp").iterdir())
    reopened = CatalogIndex(workspace, "model@x", 16)
    assert reopened.index.spec.kind == "ivf-sq8" and len(reopened.index) == 3000
    reopened.close()


def test_after_ingest_the_saved_index_holds_every_product_and_the_store_is_compacted(
    tmp_path: Path, workspace, embedder
):
    from index.persistence import load_index, read_manifest
    from index.vector_store import VectorStore

    rows = make_rows(300)
    options = IngestOptions(batch_rows=16)  # many batches, so many store segments to merge
    ingest_catalog(write_csv(tmp_path / "c.csv", rows), "acme", embedder, workspace, options)
    rows[5]["price"] = "1.00"
    ingest_catalog(write_csv(tmp_path / "c.csv", rows[:250]), "acme", embedder, workspace, IngestOptions(sync=True))
    model_id = embedder.manifest.model_id
    store = VectorStore(workspace.vectors_dir(model_id), model_id, embedder.manifest.embed_dim)
    assert len(store.segments()) <= 2 and store.stored_rows() <= store.count() + 300
    engine = make_engine(workspace.database_url)
    with session_factory(engine)() as session:
        images = set(session.scalars(select(ProductImage.id)))
    engine.dispose()
    saved = load_index(workspace.index_dir(model_id))  # what a serving process loads: no replay needed
    assert set(saved.ids().tolist()) == images == set(store.live_ids().tolist()) and len(images) == 250
    assert read_manifest(workspace.index_dir(model_id))["extra"]["store_segment"] == store.last_segment
    assert saved.attributes_of(next(iter(images))).vendor == "acme"
    for i in (0, 5, 249):
        assert _search(workspace, embedder, product_photo(i))[0].sku == f"SKU-{i:05d}"
    assert check_workspace(workspace)["healthy"]


def test_a_small_reingest_extends_the_saved_inverted_file(tmp_path: Path, workspace, embedder, monkeypatch):
    """A vendor's small change to a catalog large enough for an inverted file updates the saved index
    (no rebuild), and what it changed is what searches find."""
    import index.planner as planner

    monkeypatch.setattr(planner, "FLAT_MAX", 300)
    rows = make_rows(400)
    first = ingest_catalog(write_csv(tmp_path / "c.csv", rows), "acme", embedder, workspace).to_json()
    assert first["index"] == {"mode": "rebuilt", "index_type": "ivf-sq8", "count": 400}
    rows[7]["image"] = "photos/p00900.jpg"  # a new photo for product 7
    rows = [*rows[:390], *make_rows(20, start=1000)]  # 10 products gone, 20 new
    again = ingest_catalog(write_csv(tmp_path / "c.csv", rows), "acme", embedder, workspace, IngestOptions(sync=True))
    data = again.to_json()
    assert (data["accepted"], data["updated"], data["removed"]) == (20, 1, 10)
    assert data["index"] == {"mode": "updated", "index_type": "ivf-sq8", "count": 410}
    from index.persistence import load_index
    from index.vector_store import VectorStore

    model_id = embedder.manifest.model_id
    store = VectorStore(workspace.vectors_dir(model_id), model_id, embedder.manifest.embed_dim)
    saved = load_index(workspace.index_dir(model_id))  # what a server loads, before any replay of its own
    try:
        assert np.array_equal(saved.ids(), np.sort(store.live_ids())) and len(saved) == 410
    finally:
        saved.close()
    assert _search(workspace, embedder, product_photo(1005))[0].sku == "SKU-01005"
    assert _search(workspace, embedder, product_photo(900))[0].sku == "SKU-00007"
    assert all(hit.sku != "SKU-00395" for hit in _search(workspace, embedder, product_photo(395), k=10))
    assert check_workspace(workspace)["healthy"]


def test_near_duplicates_are_found_within_the_vendor_across_runs(tmp_path: Path, workspace, embedder):
    rows = make_rows(6)
    strict = IngestOptions(near_duplicate_threshold=0.9999)  # only the same photo counts
    first = ingest_catalog(write_csv(tmp_path / "a.csv", rows[:5]), "acme", embedder, workspace, strict).to_json()
    assert first["near_duplicates_count"] == 0
    other = ingest_catalog(write_csv(tmp_path / "b.csv", [rows[2]]), "globex", embedder, workspace, strict).to_json()
    assert other["near_duplicates_count"] == 0  # the same photo at another vendor is no duplicate
    copy = {**rows[5], "image": rows[2]["image"]}  # a new product showing product 2's photo
    again = ingest_catalog(write_csv(tmp_path / "a.csv", [*rows[:5], copy]), "acme", embedder, workspace, strict)
    data = again.to_json()
    assert data["near_duplicates_count"] == 1 and data["near_duplicates"][0]["sku"] == "SKU-00005"
    from catalog.ids import product_id

    assert data["near_duplicates"][0]["similar_product_id"] == product_id("acme", "SKU-00002")


def test_seen_products_and_vendor_vectors_bookkeeping():
    from catalog_ingest.ingest import _SeenProducts
    from catalog_ingest.near_duplicates import VendorVectors
    from index.vector_store import VectorStore

    seen = _SeenProducts()
    rng = np.random.default_rng(3)
    ids = rng.choice(2**62, size=10_000, replace=False)
    for row, pid in enumerate(ids.tolist()):
        assert seen.get(pid) is None
        seen.add(pid, row)
    assert [seen.get(int(ids[i])) for i in (0, 4095, 4096, 9999)] == [0, 4095, 4096, 9999]  # merged and recent
    assert seen.contains(np.asarray([ids[7], 12345])).tolist() == [True, False]

    store = VectorStore(Path(os.environ["VITRINE_HOME"]) / "bookkeeping-store", "model@x", 8)
    vectors = rng.standard_normal((6, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.append(np.arange(6), vectors, [ItemAttributes(vendor="a" if i < 4 else "b") for i in range(6)])
    near = VendorVectors.scratch(store, "a", Path(os.environ["VITRINE_HOME"]) / "tmp")
    assert (
        len(near) == 4
        and near.search(vectors[4:5], 8)[0]
        and all(hit[0] < 4 for hit in near.search(vectors[4:5], 8)[0])
    )  # vendor b's rows are not loaded
    assert near.search(vectors[1:2], 1)[0][0] == (1, pytest.approx(1.0, abs=1e-3))
    near.remove(np.asarray([1, 2]))  # product image 1 replaced: its old vector no longer matches; 2 removed
    near.add(np.asarray([1]), vectors[5:6])
    hits = dict(near.search(vectors[1:2], 8)[0])
    assert 2 not in hits and hits.get(1, 0) < 0.999 and len(near) == 3
    assert dict(near.search(vectors[5:6], 8)[0])[1] == pytest.approx(1.0, abs=1e-3)  # the new row counts
    near.close()
    assert not near.directory.exists()


def test_vendor_vectors_split_cells_and_stay_exact_for_near_duplicates(tmp_path: Path):
    """Many vectors: cells split as they fill, and each query still finds its near-duplicate (cosine
    ≈ 0.99) among the few cells it reads, as an exhaustive search of every vector would."""
    from catalog_ingest.near_duplicates import VendorVectors

    rng = np.random.default_rng(5)
    dim, count = 32, 6000
    centres = rng.standard_normal((40, dim)).astype(np.float32)  # clustered, like real embeddings
    vectors = centres[rng.integers(0, 40, count)] + 0.6 * rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    near = VendorVectors(dim, tmp_path / "near", list_max=256, probes=8)
    for start in range(0, count, 500):
        near.add(np.arange(start, start + 500), vectors[start : start + 500])
    assert near.cells >= count // 256 and len(near) == count
    queries = vectors[:200] + 0.15 * rng.standard_normal((200, dim)).astype(np.float32) / np.sqrt(dim)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exhaustive = np.argmax(queries @ vectors.T, axis=1)
    assert (np.diag(queries @ vectors[:200].T) > 0.97).all()
    found = [hits[0][0] for hits in near.search(queries, 3)]
    assert np.mean(np.asarray(found) == exhaustive) >= 0.98  # synthetic, spread out: harder than photos
    sizes = [len(np.fromfile(near._paths(c)[0], np.uint8)) // 16 for c in range(near.cells)]
    assert max(sizes) <= 2 * 256  # a query reads a bounded number of vectors, whatever the count


def test_vendor_vectors_purge_hidden_rows_so_removals_take_bounded_memory(tmp_path: Path):
    """A run that replaces many images: once `hidden_max` ids are hidden, the cells are rewritten
    without their rows and the record of hidden ids empties, and searches answer as before."""
    from catalog_ingest.near_duplicates import VendorVectors

    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    near = VendorVectors(16, tmp_path / "near", list_max=16, probes=64, hidden_max=8)
    near.add(np.arange(40), vectors)
    near.remove(np.arange(5))
    assert near.hidden == 5 and len(near) == 35  # below the bound: only recorded
    near.remove(np.arange(5, 10))
    assert near.hidden == 0 and len(near) == 30  # purged: the rows left the cells
    stored = sum(len(np.fromfile(near._paths(c)[0], np.uint8)) // 16 for c in range(near.cells))
    assert stored == 30
    near.add(np.asarray([3]), vectors[3:4])  # an id removed, then written again, counts again
    assert near.search(vectors[3:4], 1)[0][0] == (3, pytest.approx(1.0, abs=1e-3))
    hits = {i for i, _ in near.search(vectors[:10], 40)[0]}
    assert not hits & set(range(10)) - {3}
    near.close()


def test_vendor_vectors_keep_few_copies_of_one_repeated_vector(tmp_path: Path):
    """One stock photo behind many products: its copies cannot be split apart, so a cell keeps a
    few of them instead of growing with the catalog (every query would read them all), and a
    query still finds a product with that photo."""
    from catalog_ingest.near_duplicates import IDENTICAL_KEEP, VendorVectors

    rng = np.random.default_rng(13)
    distinct = rng.standard_normal((3, 16)).astype(np.float32)
    distinct /= np.linalg.norm(distinct, axis=1, keepdims=True)
    which = rng.integers(0, 3, 5000)
    near = VendorVectors(16, tmp_path / "near", list_max=64, probes=8)
    for start in range(0, 5000, 100):
        near.add(np.arange(start, start + 100), distinct[which[start : start + 100]])
    sizes = [len(np.fromfile(near._paths(c)[0], np.uint8)) // 16 for c in range(near.cells)]
    assert max(sizes) <= 64 + 100 and len(near) < 3 * (64 + 100)
    assert len(near) >= 3 * IDENTICAL_KEEP
    for k in range(3):
        hits = near.search(distinct[k : k + 1], IDENTICAL_KEEP)[0]
        assert len(hits) == IDENTICAL_KEEP and all(score == pytest.approx(1.0, abs=1e-3) for _, score in hits)
        assert all(which[i] == k for i, _ in hits)
    near.close()

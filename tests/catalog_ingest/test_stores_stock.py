"""Stores and stock per store in: field checks, a stores CSV, stock snapshots and deltas with their
rejects, and the stock version. Real SQLite (or PostgreSQL with VITRINE_TEST_DATABASE=postgresql)."""

from __future__ import annotations

import io
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.db import Product, Store, StoreStock, Vendor, make_engine, session_factory
from catalog.ids import product_id
from catalog.workspace import Workspace
from catalog_ingest import stock
from catalog_ingest.errors import CatalogError
from catalog_ingest.stock import import_stock
from catalog_ingest.stores import StoreInvalid, check_store, import_stores, save_store, stock_version

GOOD = {
    "code": "B-01",
    "name": "Berlin Mitte",
    "address": "Rosenthaler Str. 1",
    "postcode": "10119",
    "city": "Berlin",
    "country": "de",
    "lat": "52.5290",
    "lon": "13.4010",
    "opening_hours": "Mo-Fr 09:00-20:00; Sa 10:00-18:00",
    "phone": "030 901820",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def db(tmp_path: Path):
    engine = make_engine(Workspace(tmp_path / "home").database_url)
    yield session_factory(engine)
    engine.dispose()


def _vendor(db: sessionmaker, name: str, skus: int = 5) -> int:
    with db() as session:
        vendor = Vendor(name=name)
        session.add(vendor)
        session.flush()
        for n in range(skus):
            sku = f"SKU-{n}"
            session.add(
                Product(
                    id=product_id(name, sku),
                    vendor_id=vendor.id,
                    sku=sku,
                    title=f"Thing {n}",
                    price=Decimal("9.99"),
                    currency="EUR",
                    row_hash="x",
                )
            )
        session.commit()
        return vendor.id


def _stock(session: Session, vendor_id: int) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(Store.code, Product.sku, StoreStock.quantity)
        .join(Store, Store.id == StoreStock.store_id)
        .join(Product, Product.id == StoreStock.product_id)
        .where(Store.vendor_id == vendor_id)
    )
    return {(code, sku): quantity for code, sku, quantity in rows}


def test_a_good_store_is_checked_and_normalised() -> None:
    fields = check_store(GOOD)
    assert fields.country == "DE" and fields.phone == "+4930901820"
    assert fields.lat == pytest.approx(52.529) and fields.lon == pytest.approx(13.401)
    assert fields.opening_hours["mo"] == [["09:00", "20:00"]] and fields.opening_hours["su"] == []


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"code": ""}, "code", "required"),
        ({"code": "A 1"}, "code", "spaces"),
        ({"code": "A/1"}, "code", "slashes"),
        ({"name": " "}, "name", "required"),
        ({"lat": "91"}, "lat", "between -90 and 90"),
        ({"lon": "-180.5"}, "lon", "between -180 and 180"),
        ({"lat": "north"}, "lat", "not a number"),
        ({"lon": ""}, "lon", "required"),
        ({"opening_hours": "Mo 9-5"}, "opening_hours", "not a time like 09:00"),
        ({"phone": "123"}, "phone", "not valid for DE"),
        ({"country": "XX"}, "country", "ISO 3166"),
        ({"country": "", "phone": "030 901820"}, "phone", "give the store's country"),
        ({"timezone": "Europe/Atlantis"}, "timezone", "IANA"),
    ],
)
def test_a_wrong_field_is_named(change: dict, field: str, says: str) -> None:
    with pytest.raises(StoreInvalid) as caught:
        check_store({**GOOD, **change})
    assert field in caught.value.errors
    assert says in caught.value.errors[field]


def test_every_wrong_field_at_once() -> None:
    with pytest.raises(StoreInvalid) as caught:
        check_store({"code": "", "name": "", "lat": "100", "lon": "x"})
    assert set(caught.value.errors) == {"code", "name", "lat", "lon"}


def test_same_code_updates_and_raises_the_stock_version(db: sessionmaker) -> None:
    vendor = _vendor(db, "acme")
    with db() as session:
        assert stock_version(session, vendor) == 0
        _, created = save_store(session, vendor, check_store(GOOD))
        assert created and stock_version(session, vendor) == 1
        _, created = save_store(session, vendor, check_store({**GOOD, "name": "Berlin Mitte (new)"}))
        assert not created and stock_version(session, vendor) == 2
        stores = list(session.scalars(select(Store).where(Store.vendor_id == vendor)))
    assert [s.name for s in stores] == ["Berlin Mitte (new)"]


STORES_CSV = """code,name,address,postcode,city,country,lat,lon,opening_hours,phone,timezone
B-01,Berlin Mitte,Rosenthaler Str. 1,10119,Berlin,DE,52.529,13.401,Mo-Fr 09:00-20:00,030 901820,Europe/Berlin
B-02,Berlin Kreuzberg,,10997,Berlin,DE,95,13.42,,,Europe/Berlin
H-01,Hamburg,,20095,Hamburg,DE,53.55,9.99,Mo-Sa 10:00-19:00; Su closed,,Europe/Berlin
B-01,Berlin Mitte again,,,,DE,52.5,13.4,,,
M-01,München,,80331,München,DE,48.137,11.575,Mo 25:00-26:00,,Europe/Berlin
"""


def test_two_writers_of_the_same_new_store_code_at_once_create_it_once(db: sessionmaker) -> None:
    """The form, the API and a CSV may all name a store that does not exist yet at the same moment:
    the second writer updates what the first created instead of failing on the unique key."""
    vendor = _vendor(db, "acme", skus=0)
    failures: list[BaseException] = []
    outcomes: list[bool] = []

    def write(code: str, name: str, start: threading.Barrier) -> None:
        fields = check_store({**GOOD, "code": code, "name": name})
        start.wait()
        try:
            with db() as session:
                outcomes.append(save_store(session, vendor, fields)[1])
        except BaseException as exc:  # the test reports any failure of either writer
            failures.append(exc)

    for n in range(12):
        start = threading.Barrier(2)
        writers = [threading.Thread(target=write, args=(f"NEW-{n}", who, start)) for who in ("form", "api")]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
    assert failures == []
    assert sorted(outcomes) == [False] * 12 + [True] * 12  # each code created once, then updated
    with db() as session:
        codes = session.scalars(select(Store.code).where(Store.vendor_id == vendor)).all()
        assert sorted(codes) == sorted(f"NEW-{n}" for n in range(12))
        assert stock_version(session, vendor) == 24


def test_a_stores_csv_applies_good_rows_and_reports_bad_ones(db: sessionmaker) -> None:
    vendor = _vendor(db, "acme")
    with db() as session:
        result = import_stores(session, vendor, STORES_CSV.encode())
        assert (result.rows, result.created, result.updated, result.rejected) == (5, 2, 0, 3)
        reasons = {(r.row, r.field): r.reason for r in result.rejects}
        assert "between -90 and 90" in reasons[(2, "lat")]
        assert "earlier row" in reasons[(4, "code")]
        assert "not a time of day" in reasons[(5, "opening_hours")]
        assert [r.line for r in result.rejects if r.row == 2] == [3]
        codes = set(session.scalars(select(Store.code).where(Store.vendor_id == vendor)))
        assert codes == {"B-01", "H-01"}
        assert stock_version(session, vendor) == 1  # one file, one raise
        again = import_stores(session, vendor, STORES_CSV)
        assert (again.created, again.updated) == (0, 2)


def test_a_stores_csv_without_required_columns_is_refused_whole(db: sessionmaker) -> None:
    vendor = _vendor(db, "acme")
    with db() as session, pytest.raises(CatalogError, match=r"lacks the column.*lat, lon"):
        import_stores(session, vendor, b"code,name\nA,B\n")


def _two_stores(db: sessionmaker, vendor: int) -> None:
    with db() as session:
        save_store(session, vendor, check_store(GOOD))
        save_store(session, vendor, check_store({**GOOD, "code": "B-02", "name": "Kreuzberg"}))


def test_stock_snapshot_delta_and_rejects(db: sessionmaker) -> None:
    vendor = _vendor(db, "acme")
    _two_stores(db, vendor)
    first = "store,sku,quantity\nB-01,SKU-0,5\nB-01,SKU-1,2\nB-02,SKU-0,7\nB-02,SKU-2,1\n"
    with db() as session:
        before = stock_version(session, vendor)
        result = import_stock(session, vendor, first.encode(), "snapshot")
        assert (result.rows, result.applied, result.rejected, result.removed, result.stores) == (4, 4, 0, 0, 2)
        assert stock_version(session, vendor) > before
        # A snapshot naming only B-01: its unlisted row goes, B-02 is left as it was.
        second = (
            "store;sku;quantity\nB-01;SKU-1;3\nB-01;SKU-4;0\nB-01;SKU-1;9\nX-99;SKU-1;1\n"
            "B-01;NOPE;1\nB-01;SKU-3;-2\nB-01;SKU-3;2.5\n"
        )
        result = import_stock(session, vendor, io.BytesIO(second.encode()), "snapshot")
        assert (result.applied, result.removed, result.stores) == (2, 1, 1)
        reasons = {r.row: r.reason for r in result.rejects}
        assert "on row 1" in reasons[3]
        assert "no store with the code 'X-99'" in reasons[4]
        assert "no product with the sku 'NOPE'" in reasons[5]
        assert "negative" in reasons[6]
        assert "not a whole number" in reasons[7]
        assert result.rejected == 5
        assert dict(result.rejected_by_reason) == {
            "duplicate row": 1,
            "unknown store": 1,
            "unknown sku": 1,
            "bad quantity": 2,
        }
        assert _stock(session, vendor) == {
            ("B-01", "SKU-1"): 3,
            ("B-01", "SKU-4"): 0,
            ("B-02", "SKU-0"): 7,
            ("B-02", "SKU-2"): 1,
        }
        # A delta sets what it lists and touches nothing else.
        result = import_stock(session, vendor, "store,sku,quantity\nB-02,SKU-0,1\nB-02,SKU-3,4\n", "delta")
        assert (result.applied, result.removed) == (2, 0)
        stock = _stock(session, vendor)
        assert stock[("B-02", "SKU-0")] == 1 and stock[("B-02", "SKU-3")] == 4 and stock[("B-02", "SKU-2")] == 1
        stamps = set(session.scalars(select(StoreStock.updated_at)))
        assert stamps and all(isinstance(stamp, datetime) for stamp in stamps)  # written as the ORM reads them


def test_a_refused_row_of_a_snapshot_keeps_the_stock_it_names(db: sessionmaker) -> None:
    vendor = _vendor(db, "acme")
    _two_stores(db, vendor)
    with db() as session:
        import_stock(session, vendor, "store,sku,quantity\nB-01,SKU-0,5\nB-01,SKU-1,2\nB-02,SKU-0,7\n", "snapshot")
        # SKU-1's row is refused: its stock stays as it was, SKU-0 is replaced, the rest of B-01 would go.
        result = import_stock(session, vendor, "store,sku,quantity\nB-01,SKU-0,6\nB-01,SKU-1,2.0\n", "snapshot")
        assert (result.applied, result.rejected, result.removed) == (1, 1, 0)
        # A store whose every row is refused is not emptied: the file said nothing valid about it.
        result = import_stock(session, vendor, "store,sku,quantity\nB-02,SKU-5,x\nB-02,,3\n", "snapshot")
        assert (result.applied, result.rejected, result.removed, result.stores) == (0, 2, 0, 0)
        assert _stock(session, vendor) == {("B-01", "SKU-0"): 6, ("B-01", "SKU-1"): 2, ("B-02", "SKU-0"): 7}


def test_a_duplicate_far_apart_is_caught_across_batches(db: sessionmaker, monkeypatch: pytest.MonkeyPatch) -> None:
    import catalog_ingest.stock as stock

    monkeypatch.setattr(stock, "BATCH_ROWS", 2)
    monkeypatch.setattr(stock, "COMMIT_ROWS", 3)
    vendor = _vendor(db, "acme")
    _two_stores(db, vendor)
    text = "store,sku,quantity\nB-01,SKU-0,1\nB-01,SKU-1,1\nB-01,SKU-2,1\nB-01,SKU-3,1\nB-01,SKU-0,8\n"
    with db() as session:
        result = import_stock(session, vendor, text, "delta")
        assert (result.applied, result.rejected) == (4, 1)
        assert result.rejects[0].row == 5 and "earlier row" in result.rejects[0].reason
        assert _stock(session, vendor)[("B-01", "SKU-0")] == 1  # the first one wins


def test_one_vendor_cannot_touch_another_vendors_stock(db: sessionmaker) -> None:
    acme, other = _vendor(db, "acme"), _vendor(db, "other")
    _two_stores(db, acme)
    with db() as session:
        save_store(session, other, check_store(GOOD))  # the same code, another vendor's store
        import_stock(session, acme, "store,sku,quantity\nB-01,SKU-0,5\n", "snapshot")
        result = import_stock(session, other, "store,sku,quantity\nB-01,SKU-0,1\nB-02,SKU-0,1\n", "snapshot")
        assert (result.applied, result.rejected) == (1, 1)
        assert _stock(session, acme) == {("B-01", "SKU-0"): 5}
        assert _stock(session, other) == {("B-01", "SKU-0"): 1}


def test_a_stock_file_without_its_columns_or_with_a_bad_mode_is_refused(db: sessionmaker) -> None:
    vendor = _vendor(db, "acme")
    with db() as session:
        with pytest.raises(CatalogError, match="quantity"):
            import_stock(session, vendor, "store,sku\nB-01,SKU-0\n")
        with pytest.raises(CatalogError, match="snapshot or delta"):
            import_stock(session, vendor, "store,sku,quantity\n", "full")  # type: ignore[arg-type]
        with pytest.raises(CatalogError, match="empty"):
            import_stock(session, vendor, b"")


def test_the_commands_import_stores_and_stock(db: sessionmaker, tmp_path: Path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("VITRINE_HOME", str(tmp_path / "home"))
    vendor = _vendor(db, "acme")
    stores_file = tmp_path / "stores.csv"
    stores_file.write_text(STORES_CSV)
    runner = CliRunner()
    done = runner.invoke(app, ["stores", "import", str(stores_file), "--vendor", "acme", "--json"])
    assert done.exit_code == 1, done.output  # rows were rejected: a script notices
    assert json.loads(done.stdout.strip().splitlines()[-1])["created"] == 2
    stock_file = tmp_path / "stock.csv"
    stock_file.write_text("store,sku,quantity\nB-01,SKU-0,3\nH-01,SKU-1,2\n")
    done = runner.invoke(app, ["stock", "import", str(stock_file), "--vendor", "acme", "--delta", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert (data["mode"], data["applied"], data["rejected"]) == ("delta", 2, 0)
    with db() as session:
        assert _stock(session, vendor) == {("B-01", "SKU-0"): 3, ("H-01", "SKU-1"): 2}
    unknown = runner.invoke(app, ["stock", "import", str(stock_file), "--vendor", "nobody"])
    assert unknown.exit_code == 2 and "no vendor named 'nobody'" in unknown.output


def test_a_snapshot_keeps_rows_a_newer_run_wrote_meanwhile(db: sessionmaker) -> None:
    import catalog_ingest.stock as stock

    vendor = _vendor(db, "acme")
    _two_stores(db, vendor)
    with db() as session:
        import_stock(session, vendor, "store,sku,quantity\nB-01,SKU-0,1\nB-01,SKU-1,1\n", "snapshot")
    with db() as first, db() as second:
        older = stock._Run(first, vendor, "snapshot", None)  # begins, reads its stores, then waits
        older.add(1, 2, {"store": "B-01", "sku": "SKU-0", "quantity": "5"})
        import_stock(second, vendor, "store,sku,quantity\nB-01,SKU-3,7\n", "delta")  # a newer run, meanwhile
        older.finish()
        assert older.result.removed == 1  # SKU-1, older than both runs; SKU-3 is newer than this snapshot
        assert _stock(first, vendor) == {("B-01", "SKU-0"): 5, ("B-01", "SKU-3"): 7}


def test_unreadable_lines_are_rejects_and_never_stop_a_file_half_way(
    db: sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes that are not UTF-8, a NUL character and a cell the CSV reader refuses are each their
    row's reject, wherever they are: before, a file stopped on them with a 422 after its earlier
    chunks were committed and its later rows never applied (and NUL was a 500 on PostgreSQL)."""
    monkeypatch.setattr(stock, "BATCH_ROWS", 2)
    monkeypatch.setattr(stock, "COMMIT_ROWS", 2)  # chunks are committed before the bad lines
    vendor = _vendor(db, "acme")
    _two_stores(db, vendor)
    with db() as session:
        import_stock(session, vendor, "store,sku,quantity\nB-01,SKU-4,8\n", "delta")
    huge = "x" * 200_000  # beyond the CSV reader's field limit
    lines = [
        b"store,sku,quantity",
        b"B-01,SKU-0,1",
        b"B-01,SKU-1,2",
        b"B-01,SKU-2,3",
        b"B-01,SKU-4,\xe9",  # Latin-1: a refused row of a snapshot keeps its stock
        b"B-01,SKU\x003,5",
        f"B-01,{huge},1".encode(),
        b"B-01,SKU-3,4",
        b"B-02,SKU-0,6",
    ]
    with db() as session:
        result = import_stock(session, vendor, b"\n".join(lines) + b"\n", "snapshot")
        assert (result.rows, result.applied, result.rejected) == (8, 5, 3)
        reasons = {r.line: r.reason for r in result.rejects}
        assert "not UTF-8" in reasons[5] and "NUL" in reasons[6] and "cannot be read" in reasons[7]
        assert dict(result.rejected_by_reason) == {"not UTF-8": 1, "NUL character": 1, "unreadable": 1}
        assert _stock(session, vendor) == {
            ("B-01", "SKU-0"): 1,
            ("B-01", "SKU-1"): 2,
            ("B-01", "SKU-2"): 3,
            ("B-01", "SKU-3"): 4,
            ("B-01", "SKU-4"): 8,
            ("B-02", "SKU-0"): 6,
        }
    with db() as session:  # a stores file alike: the bad row reported, the good ones applied
        stores = import_stores(session, vendor, STORES_CSV.replace("Berlin Mitte again", "Berlin\x00"))
        assert stores.rejected >= 1 and any("NUL" in r.reason for r in stores.rejects)
        assert stores.applied >= 1
    with db() as session, pytest.raises(CatalogError, match="not UTF-8"):  # only the header refuses a file
        import_stock(session, vendor, "magasin,réf,quantité\nB-01,SKU-0,1\n".encode("latin-1"), "delta")

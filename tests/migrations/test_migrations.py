"""Schema migrations: fresh databases, a 0.1.0 data folder brought up to date with every row kept,
refusal to run on a database that is behind, and models that match the migrations exactly."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from catalogs import make_rows, write_csv
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner
from webapp import start_site

import access.models  # noqa: F401  (access's tables too)
import workflow.models  # noqa: F401  (the workflow's tables join the catalog's metadata)
from catalog.db import Base, make_engine
from catalog.workspace import Workspace
from cli.main import app
from migrations.runner import DatabaseAhead, DatabaseBehind, head_revision, status

FIXTURE = Path(__file__).with_name("vitrine-0.1.0.sql")
CATALOG_TABLES = ("vendors", "products", "product_images", "ingest_jobs")
runner = CliRunner()


def _words(output: str) -> str:
    """Command output with the terminal's line wrapping undone."""
    return " ".join(output.split())


def _row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
        counts = {t: connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}
    engine.dispose()
    return counts


def _load_0_1_0(home: Path, only: tuple[str, ...] | None = None) -> str:
    """A data folder whose database was made by Vitrine 0.1.0 (optionally with only some of its tables)."""
    home.mkdir(parents=True, exist_ok=True)
    database = home / "vitrine.db"
    connection = sqlite3.connect(database)
    connection.executescript(FIXTURE.read_text())
    if only is not None:
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in names:
            if name not in only:
                connection.execute(f'DROP TABLE "{name}"')
        connection.commit()
    connection.close()
    return f"sqlite:///{database}"


def test_a_fresh_database_is_created_at_the_newest_revision(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        found = status(engine)
        assert (found.current, found.state) == (head_revision(), "current")
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_the_models_match_the_migrations_exactly(tmp_path):
    """A model change without its migration fails here, listing the differences to write."""
    engine = make_engine(f"sqlite:///{tmp_path / 'head.db'}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_a_0_1_0_database_is_refused_until_upgraded_then_keeps_every_row(tmp_path, monkeypatch):
    home = tmp_path / "home"
    url = _load_0_1_0(home)
    before = _row_counts(url)
    assert len(before) == 12 and all(count >= 1 for count in before.values()), before
    monkeypatch.setenv("VITRINE_HOME", str(home))

    with pytest.raises(DatabaseBehind, match="vitrine db upgrade"):
        make_engine(url)
    current = runner.invoke(app, ["db", "current", "--json"])
    assert current.exit_code == 0 and '"state": "behind"' in current.output and '"current": null' in current.output
    serve = runner.invoke(app, ["serve", "--model", "test-tiny"])
    assert serve.exit_code == 2 and "vitrine db upgrade" in _words(serve.output)
    demo = runner.invoke(app, ["demo", "--model", "test-tiny", "--products", "20", "--prepare-only"])
    assert demo.exit_code == 2 and "vitrine db upgrade" in _words(demo.output)
    assert not (home / "demo" / "catalog").exists()  # refused before generating anything
    catalog = write_csv(tmp_path / "acme.csv", make_rows(2))
    ingest = runner.invoke(app, ["ingest", str(catalog), "--vendor", "acme", "--model", "test-tiny"])
    assert ingest.exit_code == 2 and "vitrine db upgrade" in _words(ingest.output)
    for command in (["users", "add", "x", "--password", "long enough secret"], ["doctor"]):  # one line, no traceback
        done = subprocess.run([sys.executable, "-m", "cli", *command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "vitrine db upgrade" in done.stderr and "Traceback" not in done.stderr
    assert _row_counts(url) == before  # refusing touched nothing

    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "0.1.0 schema" in _words(upgraded.output) and head_revision() in upgraded.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "nothing to do" in _words(again.output)
    after = _row_counts(url)
    assert {t: after[t] for t in before} == before  # every 0.1.0 row kept
    new_tables = {t: n for t, n in after.items() if t not in before}
    assert {"confirmed_pairs", "customer_views", "mail_messages", "mail_unsubscribes"} <= set(new_tables)
    assert set(new_tables.values()) == {0}  # tables added since 0.1.0 start empty
    upgraded_engine = create_engine(url)
    with upgraded_engine.connect() as connection:  # the upgraded 0.1.0 schema is exactly the models'
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    upgraded_engine.dispose()

    # No time limits here: the 0.1.0 rows are weeks old, and the sweeper would rightly release a card
    # hold that old; this test is about every row surviving the upgrade as it was.
    site, server = start_site(Workspace(home), sweep_s=0)
    try:
        customer = site.client()
        page = customer.get("/r/tok-" + "x" * 40)
        assert page.status_code == 200 and "Blue glazed mug" in page.text and "Is it dishwasher safe?" in page.text
        as_json = customer.get("/api/requests/tok-" + "x" * 40).json()
        assert as_json["status"] == "paid" and as_json["offers"][0]["price"] in ("1299.00", "1299", 1299)
        operator = site.client()
        assert operator.login("olga", "correct horse battery staple").status_code == 303
        workbench = operator.get("/operator/requests/1")
        assert workbench.status_code == 200 and "carla@example.com" in workbench.text
        vendor = site.client()
        assert vendor.login("acme-staff", "another long secret").status_code == 303
        assert "Blue glazed mug" in vendor.get("/vendor/outbox").text  # the offer, in the vendor's outbox
    finally:
        server.stop()


def test_an_ingest_only_0_1_0_folder_gains_the_web_tables_and_keeps_its_catalog(tmp_path, monkeypatch):
    """0.1.0's `vitrine ingest` created only the catalog's tables; the upgrade adds the rest."""
    home = tmp_path / "home"
    url = _load_0_1_0(home, only=CATALOG_TABLES)
    before = _row_counts(url)
    assert set(before) == set(CATALOG_TABLES)
    monkeypatch.setenv("VITRINE_HOME", str(home))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    after = _row_counts(url)
    assert set(after) == set(Base.metadata.tables)
    assert {t: after[t] for t in CATALOG_TABLES} == before


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    make_engine(url).dispose()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(DatabaseAhead, match="newer Vitrine"):
        make_engine(url)


def _open_when_told(url: str, start, results) -> None:  # type: ignore[no-untyped-def]
    start.wait()
    try:
        make_engine(url).dispose()
        results.put("ok")
    except Exception as exc:  # reported to the parent, which shows it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_fresh_database_together_all_get_it(tmp_path):
    """`serve` and `ingest` (or several workers) started at once on a new data folder: one creates
    the tables, the others wait for it, and none is told the database needs an upgrade."""
    context = multiprocessing.get_context("spawn")
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'together-{attempt}.db'}"
        start, results = context.Barrier(4), context.Queue()  # all four imported and ready, then go
        workers = [context.Process(target=_open_when_told, args=(url, start, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert outcomes == ["ok"] * 4, outcomes


def _at_baseline(url: str) -> None:
    """A database migrated to 0001_baseline only (the schema this release's first revision made)."""
    from alembic import command

    from migrations.runner import _config

    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0001_baseline")
    engine.dispose()


def test_a_0001_database_gains_the_pairs_and_views_tables_and_keeps_its_rows(tmp_path):
    from alembic import command
    from sqlalchemy.exc import IntegrityError

    from migrations.runner import _config, upgrade

    url = f"sqlite:///{tmp_path / 'at-0001.db'}"
    _at_baseline(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO vendors (id, name, created_at) VALUES (1, 'acme', '2026-01-01')"))
    assert status(engine).current == "0001_baseline" and status(engine).state == "behind"
    assert not {"confirmed_pairs", "customer_views"} & set(inspect(engine).get_table_names())
    with pytest.raises(DatabaseBehind, match="0001_baseline"):
        make_engine(url)
    assert upgrade(engine) == ("0001_baseline", head_revision())
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert connection.execute(text("SELECT name FROM vendors")).scalars().all() == ["acme"]
    with engine.begin() as connection:  # the unique key holds; views' vector ids are unique but may be NULL twice
        pair = (
            "INSERT INTO confirmed_pairs (photo_sha256, product_id, vendor, sku, label, source, created_at) "
            "VALUES ('ab', 7, 'acme', 'A', 'offered', 'import', '2026-01-01')"
        )
        connection.execute(text(pair))
        for image_id in (None, None, 5):
            connection.execute(
                text(
                    "INSERT INTO customer_views (product_id, slot, image_id, pair_id, photo_sha256, created_at) "
                    "VALUES (7, 0, :image, 1, 'ab', '2026-01-01')"
                ),
                {"image": image_id},
            )
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(pair))
    with engine.begin() as connection:  # and back down: the tables go, the rest stays
        command.downgrade(_config(connection), "0001_baseline")
    assert not {"confirmed_pairs", "customer_views"} & set(inspect(engine).get_table_names())
    assert _row_counts(url)["vendors"] == 1
    engine.dispose()


def test_an_upgraded_0_1_0_database_records_pairs_against_its_old_requests(tmp_path, monkeypatch):
    from sqlalchemy import select

    from catalog.db import session_factory
    from workflow.models import ConfirmedPair, CustomerRequest, CustomerView
    from workflow.pairs import record_pair

    home = tmp_path / "home"
    url = _load_0_1_0(home)
    monkeypatch.setenv("VITRINE_HOME", str(home))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(url)
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            request = session.get(CustomerRequest, 1)
            pair = record_pair(
                session,
                photo_sha256=request.photo_sha256,
                product_id=request.offers[0].product_id,
                vendor="acme",
                sku="MUG-1",
                label="accepted",
                source="offer",
                request_id=request.id,
                offer_id=request.offers[0].id,
                created_by_id=request.operator_id,
            )
            session.flush()
            session.add(
                CustomerView(product_id=pair.product_id, slot=0, image_id=1, pair_id=pair.id, photo_sha256="ab")
            )
            session.commit()
        with sessions() as session:
            assert session.scalar(select(ConfirmedPair.request_id)) == 1
            assert session.scalar(select(CustomerView.pair_id)) == pair.id
    finally:
        engine.dispose()

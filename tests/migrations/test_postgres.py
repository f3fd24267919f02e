"""The migrations on PostgreSQL, the production database: a fresh database comes up at the newest
revision, matches the models exactly, and takes the workflow's rows, constraints included."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from postgres import postgres_server
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

import workflow.models  # noqa: F401  (the workflow's tables join the catalog's metadata)
from catalog.db import Base, Product, Vendor, make_engine, session_factory
from migrations.runner import DatabaseBehind, _config, head_revision, status, upgrade

#: The tables of release 0.1.0 (revision 0001_baseline); later revisions add the others.
BASELINE_TABLES = {
    "vendors",
    "products",
    "product_images",
    "ingest_jobs",
    "users",
    "requests",
    "candidates",
    "offers",
    "messages",
    "payments",
    "audit_log",
    "staff_sessions",
}


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


def test_a_fresh_postgresql_database_is_migrated_and_matches_the_models(postgres_url):
    engine = make_engine(postgres_url)
    try:
        assert status(engine).current == head_revision()
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        sessions = session_factory(engine)
        with sessions() as session:
            session.add(Vendor(id=1, name="acme"))
            session.flush()
            row = dict(vendor_id=1, sku="A", title="Mug", price=Decimal("1299.00"), currency="EUR", row_hash="x" * 64)
            session.add(Product(id=1, **row))
            session.commit()
            session.add(Product(id=2, **row))  # the same vendor and sku again
            with pytest.raises(IntegrityError):
                session.commit()
    finally:
        engine.dispose()


def test_a_0_1_0_postgresql_database_is_refused_then_upgraded_with_its_rows(postgres_url):
    """0.1.0 made its tables with create_all and no revision table: behind, until `vitrine db upgrade`."""
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    # 0.1.0's tables are the baseline revision's (today's models have moved on): migrate to it, then
    # drop the revision table, which 0.1.0 never had.
    with engine.begin() as connection:
        command.upgrade(_config(connection), "0001_baseline")
        connection.execute(text("DROP TABLE alembic_version"))
        assert set(inspect(connection).get_table_names()) == BASELINE_TABLES
        connection.execute(text("INSERT INTO vendors (id, name, created_at) VALUES (7, 'globex', now())"))
    try:
        with pytest.raises(DatabaseBehind, match="vitrine db upgrade"):
            make_engine(postgres_url)
        assert upgrade(engine) == (None, head_revision())
        assert status(engine).state == "current"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM vendors WHERE id = 7")).scalar_one() == "globex"
    finally:
        engine.dispose()

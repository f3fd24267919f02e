"""The product database: vendors, products, their images, ingest jobs. SQLAlchemy 2, portable SQL.

The embedded default is a SQLite file in WAL mode; a PostgreSQL URL works unchanged (no
SQLite-only constructs). Product ids and image ids are int64 chosen by `ids.py`, and image ids
are the FAISS ids, so the database and the vector store agree without a lookup table.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from catalog.private_files import private_file


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Vendor(Base):
    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("vendor_id", "sku", name="uq_product_vendor_sku"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    sku: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300))
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str] = mapped_column(String(300), default="")
    brand: Mapped[str] = mapped_column(String(200), default="")
    color: Mapped[str] = mapped_column(String(100), default="")
    in_stock: Mapped[bool] = mapped_column(Boolean, default=True)
    # Deactivated by its vendor (catalog_ingest.product_edits): its vectors leave the index, so no
    # search finds it, until reactivated. Kept, not deleted: orders and offers still point at it.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    url: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    row_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)

    vendor: Mapped[Vendor] = relationship()
    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="ProductImage.position"
    )


class ProductImage(Base):
    __tablename__ = "product_images"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # the vector id
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)

    product: Mapped[Product] = relationship(back_populates="images")


class IngestJob(Base):
    __tablename__ = "ingest_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    catalog: Mapped[str] = mapped_column(Text)
    model_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # The upload queue (issue 15, catalog_ingest/jobs.py): a job from the browser or the API waits as
    # `queued` with its file kept privately; a runner leases it, heartbeats the lease while it runs and
    # writes progress as it goes; a lease that runs out belongs to a dead process and is run again.
    upload_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    file_name: Mapped[str] = mapped_column(String(255), default="")
    mapping_name: Mapped[str] = mapped_column(String(100), default="")
    mapping_toml: Mapped[str] = mapped_column(Text, default="")
    sync: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[int | None] = mapped_column(Integer, nullable=True)  # users.id (workflow's table)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rows_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    images_done: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class SavedMapping(Base):
    """A vendor's column mapping kept under a name (TOML, as `catalog_ingest.mapping` reads it), so
    the next upload of the same shape of file needs no mapping form."""

    __tablename__ = "saved_mappings"
    __table_args__ = (UniqueConstraint("vendor_id", "name", name="uq_saved_mapping_vendor_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    toml: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class Store(Base):
    """A vendor's shop where customers can see a product or collect an order (issue 15).

    `code` is the vendor's own name for it (unique per vendor; what stock files and the API use).
    `opening_hours` is the parsed weekly schedule (`catalog.opening_hours`), read in the store's
    IANA `timezone`, so "open now" is right wherever the server runs."""

    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("vendor_id", "code", name="uq_store_vendor_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text, default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    opening_hours: Mapped[dict] = mapped_column(JSON, default=dict)
    phone: Mapped[str] = mapped_column(String(20), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class StoreStock(Base):
    """How many of a product one store holds. A row with quantity 0 and no row mean the same."""

    __tablename__ = "store_stock"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True, index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class StockVersion(Base):
    """One counter per vendor, raised by every change to its stores or their stock, so a serving
    process knows cheaply (one small query) when its in-memory stock map is out of date."""

    __tablename__ = "stock_versions"

    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


def database_url(home: Path) -> str:
    return f"sqlite:///{(home / 'vitrine.db').resolve()}"


def _switch_to_wal(cursor, attempts: int = 50) -> None:  # type: ignore[no-untyped-def]
    """`PRAGMA journal_mode=WAL`, retried while another process holds the lock it needs.

    Switching a fresh file to WAL takes an exclusive lock; when several processes open a new data
    folder at once (serve, ingest, workers) SQLite answers "database is locked" at once, without its
    busy handler, to whoever loses. The switch is idempotent, so trying again shortly is safe."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 + 0.01 * attempt)


def _private_database(database: str | None) -> None:
    """The SQLite file 0600 before SQLite first opens it (it then gives its -wal and -shm files the
    same mode); an older one of ours, made with the default umask, is narrowed."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite itself says what is wrong with the folder
    private_file(path)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            private_file(companion)


def make_engine(url: str) -> Engine:
    """An engine on a database at the newest schema; SQLite gets WAL mode, foreign keys and a busy timeout.

    A fresh database gets its tables from the migrations; one that is behind (or ahead) is refused
    with `migrations.runner.DatabaseBehind` naming `vitrine db upgrade`, before anything reads it.
    """
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        _private_database(engine.url.database)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA busy_timeout=10000")
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    from migrations.runner import require_current  # Alembic loads only when a database is opened

    try:
        require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)

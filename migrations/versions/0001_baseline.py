"""Baseline: the schema of release 0.1.0, the first release with data folders in use.

0.1.0 made its tables with `create_all`, and a data folder that only ever ran `vitrine ingest` has
the catalog tables and none of the web app's. So each table here is created only where it is
absent: a fresh database gets them all, a 0.1.0 database gets what it lacks and keeps its rows.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _absent(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _absent("audit_log"):
        op.create_table(
            "audit_log",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=True),
            sa.Column("actor", sa.String(length=120), nullable=False),
            sa.Column("action", sa.String(length=60), nullable=False),
            sa.Column("detail", sa.JSON(), nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
        op.create_index(op.f("ix_audit_log_request_id"), "audit_log", ["request_id"], unique=False)
    if _absent("vendors"):
        op.create_table(
            "vendors",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
    if _absent("ingest_jobs"):
        op.create_table(
            "ingest_jobs",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("vendor_id", sa.Integer(), nullable=False),
            sa.Column("catalog", sa.Text(), nullable=False),
            sa.Column("model_id", sa.String(length=200), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("summary", sa.JSON(), nullable=True),
            sa.ForeignKeyConstraint(
                ["vendor_id"],
                ["vendors.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_ingest_jobs_vendor_id"), "ingest_jobs", ["vendor_id"], unique=False)
    if _absent("products"):
        op.create_table(
            "products",
            sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("vendor_id", sa.Integer(), nullable=False),
            sa.Column("sku", sa.String(length=128), nullable=False),
            sa.Column("title", sa.String(length=300), nullable=False),
            sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
            sa.Column("currency", sa.String(length=3), nullable=False),
            sa.Column("category", sa.String(length=300), nullable=False),
            sa.Column("brand", sa.String(length=200), nullable=False),
            sa.Column("color", sa.String(length=100), nullable=False),
            sa.Column("in_stock", sa.Boolean(), nullable=False),
            sa.Column("url", sa.Text(), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("row_hash", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["vendor_id"],
                ["vendors.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("vendor_id", "sku", name="uq_product_vendor_sku"),
        )
        op.create_index(op.f("ix_products_vendor_id"), "products", ["vendor_id"], unique=False)
    if _absent("users"):
        op.create_table(
            "users",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("role", sa.String(length=20), nullable=False),
            sa.Column("password_hash", sa.String(length=200), nullable=False),
            sa.Column("vendor_id", sa.Integer(), nullable=True),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["vendor_id"],
                ["vendors.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
    if _absent("product_images"):
        op.create_table(
            "product_images",
            sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("product_id", sa.BigInteger(), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("source", sa.Text(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("width", sa.Integer(), nullable=False),
            sa.Column("height", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_product_images_product_id"), "product_images", ["product_id"], unique=False)
        op.create_index(op.f("ix_product_images_sha256"), "product_images", ["sha256"], unique=False)
    if _absent("requests"):
        op.create_table(
            "requests",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("token", sa.String(length=64), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("email", sa.String(length=254), nullable=False),
            sa.Column("words", sa.Text(), nullable=False),
            sa.Column("budget", sa.Numeric(precision=14, scale=2), nullable=True),
            sa.Column("photo_sha256", sa.String(length=64), nullable=False),
            sa.Column("photo_width", sa.Integer(), nullable=False),
            sa.Column("photo_height", sa.Integer(), nullable=False),
            sa.Column("category", sa.String(length=300), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("claimed_by_id", sa.Integer(), nullable=True),
            sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("operator_id", sa.Integer(), nullable=True),
            sa.Column("accepted_offer_id", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(
                ["claimed_by_id"],
                ["users.id"],
            ),
            sa.ForeignKeyConstraint(
                ["operator_id"],
                ["users.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token"),
        )
        op.create_index(op.f("ix_requests_created_at"), "requests", ["created_at"], unique=False)
        op.create_index(op.f("ix_requests_status"), "requests", ["status"], unique=False)
    if _absent("staff_sessions"):
        op.create_table(
            "staff_sessions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("token_sha256", sa.String(length=64), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token_sha256"),
        )
        op.create_index(op.f("ix_staff_sessions_user_id"), "staff_sessions", ["user_id"], unique=False)
    if _absent("candidates"):
        op.create_table(
            "candidates",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("round", sa.Integer(), nullable=False),
            sa.Column("rank", sa.Integer(), nullable=False),
            sa.Column("product_id", sa.BigInteger(), nullable=False),
            sa.Column("image_id", sa.BigInteger(), nullable=False),
            sa.Column("score", sa.Float(), nullable=False),
            sa.Column("query", sa.JSON(), nullable=True),
            sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_candidates_request_id"), "candidates", ["request_id"], unique=False)
    if _absent("messages"):
        op.create_table(
            "messages",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("author", sa.String(length=20), nullable=False),
            sa.Column("author_name", sa.String(length=100), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["request_id"],
                ["requests.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_messages_request_id"), "messages", ["request_id"], unique=False)
    if _absent("offers"):
        op.create_table(
            "offers",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("product_id", sa.BigInteger(), nullable=False),
            sa.Column("vendor_id", sa.Integer(), nullable=True),
            sa.Column("title", sa.String(length=300), nullable=False),
            sa.Column("vendor", sa.String(length=200), nullable=False),
            sa.Column("image_sha256", sa.String(length=64), nullable=False),
            sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
            sa.Column("currency", sa.String(length=3), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("created_by_id", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(
                ["created_by_id"],
                ["users.id"],
            ),
            sa.ForeignKeyConstraint(
                ["request_id"],
                ["requests.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_offers_request_id"), "offers", ["request_id"], unique=False)
    if _absent("payments"):
        op.create_table(
            "payments",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("offer_id", sa.Integer(), nullable=False),
            sa.Column("live_request_id", sa.Integer(), nullable=True),
            sa.Column("idempotency_key", sa.String(length=200), nullable=False),
            sa.Column("provider", sa.String(length=40), nullable=False),
            sa.Column("test", sa.Boolean(), nullable=False),
            sa.Column("provider_ref", sa.String(length=200), nullable=False),
            sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
            sa.Column("currency", sa.String(length=3), nullable=False),
            sa.Column("card_last4", sa.String(length=4), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["offer_id"],
                ["offers.id"],
            ),
            sa.ForeignKeyConstraint(
                ["request_id"],
                ["requests.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("idempotency_key"),
            sa.UniqueConstraint("live_request_id", name="uq_payment_one_live_per_request"),
        )
        op.create_index(op.f("ix_payments_request_id"), "payments", ["request_id"], unique=False)


def downgrade() -> None:
    for table in [
        "payments",
        "offers",
        "messages",
        "candidates",
        "staff_sessions",
        "requests",
        "product_images",
        "users",
        "products",
        "ingest_jobs",
        "vendors",
        "audit_log",
    ]:
        op.drop_table(table)

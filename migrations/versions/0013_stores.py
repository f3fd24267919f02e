"""Stores and stock per store (issue 15): a vendor's shops with position, opening hours and time
zone (`stores`), how many of each product a shop holds (`store_stock`), and a per-vendor counter
raised by every change (`stock_versions`) that serving processes poll to refresh their stock map.

Revision ID: 0013_stores
Revises: 0012_fulfilment
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_stores"
down_revision = "0012_fulfilment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=False),
        sa.Column("city", sa.String(length=120), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("opening_hours", sa.JSON(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor_id", "code", name="uq_store_vendor_code"),
    )
    op.create_index("ix_stores_vendor_id", "stores", ["vendor_id"])
    op.create_table(
        "store_stock",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("store_id", "product_id"),
    )
    op.create_index("ix_store_stock_product_id", "store_stock", ["product_id"])
    op.create_table(
        "stock_versions",
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"]),
        sa.PrimaryKeyConstraint("vendor_id"),
    )


def downgrade() -> None:
    op.drop_table("stock_versions")
    op.drop_index("ix_store_stock_product_id", table_name="store_stock")
    op.drop_table("store_stock")
    op.drop_index("ix_stores_vendor_id", table_name="stores")
    op.drop_table("stores")

"""Confirmed pairs and customer views: what operators' picks teach the search.

`confirmed_pairs`: a customer photo (by the sha256 it is stored under) and a product, labelled
offered, accepted or rejected, from a sent offer or an import. `customer_views`: a confirmed photo
kept as an extra vector of its product, in one of 16 slots per product. Both tables are new, so
this revision only creates them (and a downgrade drops them).

Revision ID: 0002_confirmed_pairs
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_confirmed_pairs"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "confirmed_pairs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("crop", sa.JSON(), nullable=True),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("vendor", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("photo_sha256", "product_id", "label", name="uq_confirmed_pair"),
    )
    op.create_index(op.f("ix_confirmed_pairs_product_id"), "confirmed_pairs", ["product_id"], unique=False)
    op.create_index(op.f("ix_confirmed_pairs_request_id"), "confirmed_pairs", ["request_id"], unique=False)
    op.create_table(
        "customer_views",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.BigInteger(), nullable=True),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("crop", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["pair_id"], ["confirmed_pairs.id"]),
        sa.ForeignKeyConstraint(["removed_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_id"),
    )
    op.create_index(op.f("ix_customer_views_pair_id"), "customer_views", ["pair_id"], unique=False)
    op.create_index(op.f("ix_customer_views_product_id"), "customer_views", ["product_id"], unique=False)


def downgrade() -> None:
    op.drop_table("customer_views")
    op.drop_table("confirmed_pairs")

"""Nearby (issue 15): the location a customer shares with a request (`request_locations`: a typed
postcode or city geocoded offline, or the browser's position, by consent only), and the store an
offer may be collected from (`offer_pickups`), so a customer can accept with "pick up at <store>".

Revision ID: 0014_nearby
Revises: 0013_stores
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_nearby"
down_revision = "0013_stores"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_locations",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_table(
        "offer_pickups",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"]),
        sa.PrimaryKeyConstraint("offer_id"),
    )
    op.create_index("ix_offer_pickups_store_id", "offer_pickups", ["store_id"])


def downgrade() -> None:
    op.drop_index("ix_offer_pickups_store_id", table_name="offer_pickups")
    op.drop_table("offer_pickups")
    op.drop_table("request_locations")

"""Vendor fulfilment (issue 15): what was asked to fulfil an order, kept before the capture so a
crash between capture and completion resolves itself (`order_fulfilments`, workflow/fulfilment.py),
and a vendor's "not available" on an offered product (`offer_unavailable`, workflow/offer_flags.py).

Revision ID: 0012_fulfilment
Revises: 0011_vendor_products
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_fulfilment"
down_revision = "0011_vendor_products"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_fulfilments",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=80), nullable=False),
        sa.Column("tracking", sa.String(length=80), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_by", sa.String(length=120), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_table(
        "offer_unavailable",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("flagged_by", sa.String(length=120), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("offer_id"),
    )
    op.create_index("ix_offer_unavailable_vendor_id", "offer_unavailable", ["vendor_id"])


def downgrade() -> None:
    op.drop_index("ix_offer_unavailable_vendor_id", table_name="offer_unavailable")
    op.drop_table("offer_unavailable")
    op.drop_table("order_fulfilments")

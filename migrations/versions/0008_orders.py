"""Orders and money: each accept's delivery (`orders`: address or pickup, the order number once paid,
carrier and tracking once shipped; workflow/orders.py), the budget's currency on requests, and the
exchange rates that convert prices for budgets (`exchange_rates`, units per 1 EUR; workflow/rates.py).

Revision ID: 0008_orders
Revises: 0007_sign_in_throttle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_orders"
down_revision = "0007_sign_in_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=20), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("line1", sa.String(length=200), nullable=False),
        sa.Column("line2", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=120), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("carrier", sa.String(length=80), nullable=False),
        sa.Column("tracking", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"]),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("payment_id"),
    )
    op.create_index("ix_orders_request_id", "orders", ["request_id"])
    op.create_index("ix_orders_vendor_id", "orders", ["vendor_id"])
    op.create_table(
        "exchange_rates",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("per_base", sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("currency"),
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("budget_currency", sa.String(length=3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("budget_currency")
    op.drop_table("exchange_rates")
    op.drop_index("ix_orders_vendor_id", table_name="orders")
    op.drop_index("ix_orders_request_id", table_name="orders")
    op.drop_table("orders")

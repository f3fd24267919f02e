"""Placeholder: filled in by the work that owns this revision (no schema change yet).

Revision ID: 0009_vendor_accounts
Revises: 0008_orders
"""

from __future__ import annotations

revision = "0009_vendor_accounts"
down_revision = "0008_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

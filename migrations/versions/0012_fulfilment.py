"""Placeholder: filled in by the work that owns this revision (no schema change yet).

Revision ID: 0012_fulfilment
Revises: 0011_vendor_products
"""

from __future__ import annotations

revision = "0012_fulfilment"
down_revision = "0011_vendor_products"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

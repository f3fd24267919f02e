"""Placeholder: filled in by the work that owns this revision (no schema change yet).

Revision ID: 0011_vendor_products
Revises: 0010_ingest_jobs
"""

from __future__ import annotations

revision = "0011_vendor_products"
down_revision = "0010_ingest_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

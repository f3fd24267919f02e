"""Placeholder: filled in by the work that owns this revision (no schema change yet).

Revision ID: 0010_ingest_jobs
Revises: 0009_vendor_accounts
"""

from __future__ import annotations

revision = "0010_ingest_jobs"
down_revision = "0009_vendor_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

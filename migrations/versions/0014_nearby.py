"""Placeholder: filled in by the work that owns this revision (no schema change yet).

Revision ID: 0014_nearby
Revises: 0013_stores
"""

from __future__ import annotations

revision = "0014_nearby"
down_revision = "0013_stores"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""Placeholder for hashed customer tokens, staff account controls and sign-in failures (issue 17).

Filled in by the change that adds those tables.
Revision ID: 0006_hardening
Revises: 0005_access
"""

from __future__ import annotations

revision = "0006_hardening"
down_revision = "0005_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

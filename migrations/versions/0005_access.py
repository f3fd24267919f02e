"""Placeholder for the waitlist, invitations and operator applications (issue 16).

Filled in by the change that adds those tables.
Revision ID: 0005_access
Revises: 0004_mail_outbox
"""

from __future__ import annotations

revision = "0005_access"
down_revision = "0004_mail_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

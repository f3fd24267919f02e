"""Placeholder for the durable e-mail outbox (issue 16, item 4).

Filled in by the change that adds those tables.
Revision ID: 0004_mail_outbox
Revises: 0003_payment_saga
"""

from __future__ import annotations

revision = "0004_mail_outbox"
down_revision = "0003_payment_saga"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

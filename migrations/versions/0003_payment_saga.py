"""The payment saga's record: `payments.request_digest` (a keyed hash of what an accept asked for,
so a replayed idempotency key with another card is refused), `payments.attempts` (failed voids,
retried by reconciliation) and an index on `payments.status` (reconciliation looks up pending and
failed-void payments). Existing rows get an empty digest (checked by the card's last four digits)
and no attempts.

Revision ID: 0003_payment_saga
Revises: 0002_confirmed_pairs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_payment_saga"
down_revision = "0002_confirmed_pairs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("request_digest", sa.String(length=64), server_default="", nullable=False))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.create_index(op.f("ix_payments_status"), "payments", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payments_status"), table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("attempts")
        batch.drop_column("request_digest")

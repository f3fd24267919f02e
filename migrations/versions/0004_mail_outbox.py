"""The durable e-mail outbox (issue 16, item 4): `mail_messages`, each message as it will be sent
(both parts rendered at enqueue, a Message-ID kept across retries, its status, attempts, the time
it is next due and the last error), and `mail_unsubscribes`, the addresses that want no more
non-transactional mail. New tables only; nothing existing changes.

Revision ID: 0004_mail_outbox
Revises: 0003_payment_saga
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_mail_outbox"
down_revision = "0003_payment_saga"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        sa.Column("list_unsubscribe", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_mail_messages_due", "mail_messages", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "mail_unsubscribes",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )


def downgrade() -> None:
    op.drop_table("mail_unsubscribes")
    op.drop_index("ix_mail_messages_due", table_name="mail_messages")
    op.drop_table("mail_messages")

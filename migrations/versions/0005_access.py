"""Access (issue 16): the closed-beta waitlist (`waitlist_entries`: normalised address, share code,
referrer, verification and invitation token hashes), operator applications, the categories each
operator knows (`operator_categories`, keyed by user id so `users` stays as it is) and one-time
set-password links (`password_links`).

Revision ID: 0005_access
Revises: 0004_mail_outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_access"
down_revision = "0004_mail_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=43), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("share_code", sa.String(length=16), nullable=False),
        sa.Column("referrer_id", sa.Integer(), nullable=True),
        sa.Column("verify_sha256", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invitation_sha256", sa.String(length=64), nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("invitation_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["invited_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["referrer_id"], ["waitlist_entries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("invitation_sha256"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("share_code"),
    )
    op.create_index(op.f("ix_waitlist_entries_referrer_id"), "waitlist_entries", ["referrer_id"], unique=False)
    op.create_index(op.f("ix_waitlist_entries_verify_sha256"), "waitlist_entries", ["verify_sha256"], unique=False)
    op.create_table(
        "operator_applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_operator_applications_email"), "operator_applications", ["email"], unique=False)
    op.create_index(op.f("ix_operator_applications_status"), "operator_applications", ["status"], unique=False)
    op.create_table(
        "operator_categories",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "category"),
    )
    op.create_table(
        "password_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index(op.f("ix_password_links_user_id"), "password_links", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_password_links_user_id"), table_name="password_links")
    op.drop_table("password_links")
    op.drop_table("operator_categories")
    op.drop_index(op.f("ix_operator_applications_status"), table_name="operator_applications")
    op.drop_index(op.f("ix_operator_applications_email"), table_name="operator_applications")
    op.drop_table("operator_applications")
    op.drop_index(op.f("ix_waitlist_entries_verify_sha256"), table_name="waitlist_entries")
    op.drop_index(op.f("ix_waitlist_entries_referrer_id"), table_name="waitlist_entries")
    op.drop_table("waitlist_entries")

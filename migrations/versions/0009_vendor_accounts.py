"""Vendor accounts (issue 15, part A): vendor applications as typed and as reviewed
(`vendor_applications`, approval links the vendor and its first user), and vendor API keys
(`vendor_api_keys`: only the key's sha256, a short prefix to tell keys apart, its creator whose
vendor it acts for, last use and revocation), so a back office's program needs no password.

Revision ID: 0009_vendor_accounts
Revises: 0008_orders
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_vendor_accounts"
down_revision = "0008_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vendor_applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("contact_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("website", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("vendor_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_vendor_applications_email"), "vendor_applications", ["email"], unique=False)
    op.create_index(op.f("ix_vendor_applications_status"), "vendor_applications", ["status"], unique=False)
    op.create_table(
        "vendor_api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_sha256"),
    )
    op.create_index(op.f("ix_vendor_api_keys_vendor_id"), "vendor_api_keys", ["vendor_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_vendor_api_keys_vendor_id"), table_name="vendor_api_keys")
    op.drop_table("vendor_api_keys")
    op.drop_index(op.f("ix_vendor_applications_status"), table_name="vendor_applications")
    op.drop_index(op.f("ix_vendor_applications_email"), table_name="vendor_applications")
    op.drop_table("vendor_applications")

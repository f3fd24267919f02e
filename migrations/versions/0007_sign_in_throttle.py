"""The sign-in lockout's counter (`workflow/sign_in_throttle.py`): failed sign-ins per account name and
until when the name is locked. Kept in the database so every app process shares one count.

Revision ID: 0007_sign_in_throttle
Revises: 0006_hardening
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sign_in_throttle"
down_revision = "0006_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttle")

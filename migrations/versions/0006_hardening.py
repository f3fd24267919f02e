"""Hashed customer tokens and staff account controls (issue 17, items 9 and 10).

`requests.token` (the customer's key, in plain text) becomes `requests.token_sha256` (SHA-256 of the
token, unique, what requests are looked up by) and `requests.token_salt` (what a new token is derived
from with the app's secret, so later e-mails can repeat the link; NULL for the converted rows, whose
links keep working). `users` gains `totp_secret` and `totp_last_step` (TOTP two-factor; the last step
accepted refuses a replayed code).

The conversion hashes each existing token in Python, in batches, so it is the same on SQLite and
PostgreSQL. Downgrading cannot bring the tokens back: it refuses unless the table is empty.

Revision ID: 0006_hardening
Revises: 0005_access
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0006_hardening"
down_revision = "0005_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("token_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("token_salt", sa.String(length=32), nullable=True))
    connection = op.get_bind()
    requests = sa.table("requests", sa.column("id", sa.Integer), sa.column("token", sa.String))
    hashed = sa.table("requests", sa.column("id", sa.Integer), sa.column("token_sha256", sa.String))
    rows = connection.execute(sa.select(requests.c.id, requests.c.token)).all()
    for start in range(0, len(rows), 500):
        connection.execute(
            hashed.update().where(hashed.c.id == sa.bindparam("row_id")).values(token_sha256=sa.bindparam("digest")),
            [{"row_id": i, "digest": hashlib.sha256(t.encode()).hexdigest()} for i, t in rows[start : start + 500]],
        )
    with op.batch_alter_table("requests") as batch:
        batch.alter_column("token_sha256", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_requests_token_sha256", ["token_sha256"])
        batch.drop_column("token")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    connection = op.get_bind()
    if connection.execute(sa.text("SELECT count(*) FROM requests")).scalar_one():
        raise RuntimeError("The customer tokens were never stored (only their hashes): this cannot be undone.")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("token", sa.String(length=64), nullable=False))
        batch.create_unique_constraint("uq_requests_token", ["token"])
        batch.drop_constraint("uq_requests_token_sha256", type_="unique")
        batch.drop_column("token_salt")
        batch.drop_column("token_sha256")

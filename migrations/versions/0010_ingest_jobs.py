"""Catalog uploads from the browser and the API (issue 15): `ingest_jobs` becomes a durable queue
(the uploaded file, its mapping and --sync, progress counters, the reject report, an error, who
asked, and a lease with a heartbeat so a job whose process died is run again), and vendors keep
column mappings under a name (`saved_mappings`).

Revision ID: 0010_ingest_jobs
Revises: 0009_vendor_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_ingest_jobs"
down_revision = "0009_vendor_accounts"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("upload_path", sa.Text(), True, None),
    ("file_name", sa.String(length=255), False, ""),
    ("mapping_name", sa.String(length=100), False, ""),
    ("mapping_toml", sa.Text(), False, ""),
    ("sync", sa.Boolean(), False, sa.false()),
    ("requested_by", sa.Integer(), True, None),
    ("queued_at", sa.DateTime(timezone=True), True, None),
    ("rows_total", sa.Integer(), True, None),
    ("rows_done", sa.Integer(), False, "0"),
    ("images_done", sa.Integer(), False, "0"),
    ("accepted", sa.Integer(), False, "0"),
    ("rejected", sa.Integer(), False, "0"),
    ("progress_at", sa.DateTime(timezone=True), True, None),
    ("report_path", sa.Text(), True, None),
    ("error", sa.Text(), True, None),
    ("lease_owner", sa.String(length=100), True, None),
    ("lease_until", sa.DateTime(timezone=True), True, None),
    ("attempts", sa.Integer(), False, "0"),
)


def upgrade() -> None:
    # Existing rows (CLI runs) get the defaults; NOT NULL columns need a server default to be added.
    for name, kind, nullable, default in _COLUMNS:
        op.add_column(
            "ingest_jobs",
            sa.Column(name, kind, nullable=nullable, server_default=default),
        )
    op.create_table(
        "saved_mappings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("toml", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor_id", "name", name="uq_saved_mapping_vendor_name"),
    )
    op.create_index("ix_saved_mappings_vendor_id", "saved_mappings", ["vendor_id"])


def downgrade() -> None:
    op.drop_index("ix_saved_mappings_vendor_id", table_name="saved_mappings")
    op.drop_table("saved_mappings")
    with op.batch_alter_table("ingest_jobs") as batch:  # SQLite drops columns by copying the table
        for name, *_ in reversed(_COLUMNS):
            batch.drop_column(name)

"""The vendor's products (issue 15): `products.active`, so a vendor can take a product out of search
without deleting it (offers and orders keep pointing at it) and put it back later.

Revision ID: 0011_vendor_products
Revises: 0010_ingest_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_vendor_products"
down_revision = "0010_ingest_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.drop_column("active")

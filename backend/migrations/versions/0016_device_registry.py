"""The device registry's version (one row): a process checks it per unit of work instead of
counting every device (``trips.service.ResolverCache``).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    registry = op.create_table(
        "device_registry",
        sa.Column("registry_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("registry_id"),
    )
    op.bulk_insert(registry, [{"registry_id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("device_registry")

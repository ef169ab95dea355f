"""A phone's clock read off the bus beacons it heard (issue 14): per phone batch the offset
its times were corrected by and the device's bounds on it after the batch
(``backend.phones.clock``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("phone_batches") as batch:
        batch.add_column(
            sa.Column("clock_offset_ms", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("clock_lo_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("clock_hi_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("clock_as_of_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("phone_batches") as batch:
        batch.drop_column("clock_as_of_ms")
        batch.drop_column("clock_hi_ms")
        batch.drop_column("clock_lo_ms")
        batch.drop_column("clock_offset_ms")

"""Work units remember how far their vehicle's uploads are complete (``sealed_until``), so
a be-out closes on heartbeat uploads when nothing else arrives (after a journey's last
stop), and from which data time they changed (``dirty_from``), so a worker rebuilds only
the journeys new data touches.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_units") as batch:
        batch.add_column(sa.Column("sealed_until", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("dirty_from", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_units") as batch:
        batch.drop_column("dirty_from")
        batch.drop_column("sealed_until")

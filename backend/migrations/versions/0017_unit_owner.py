"""Which worker process last reconciled each work unit: that worker may rebuild the unit's
next upload from the sightings it still holds plus the new ones
(``trips.service.SightingsCache``), and claims its own units first.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_units") as batch:
        batch.add_column(sa.Column("reconciled_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_units") as batch:
        batch.drop_column("reconciled_by")

"""Corrections re-derive the ride (issue 15): the corrected trip's boarding and alighting
times and stops travelled, from the journey's stop events.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("board_time", "alight_time", "stops_travelled")


def upgrade() -> None:
    with op.batch_alter_table("trip_corrections") as batch:
        batch.add_column(sa.Column("board_time", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("alight_time", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("stops_travelled", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trip_corrections") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column)

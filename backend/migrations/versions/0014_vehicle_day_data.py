"""What each bus sends (issue 12): per vehicle and service day its journeys (and those
without a journey event), its calls (and those derived from GNSS), its GNSS fixes and door
events, as reconciliation read them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vehicle_day_data",
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("journeys", sa.Integer(), nullable=False),
        sa.Column("inferred_journeys", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("derived_calls", sa.Integer(), nullable=False),
        sa.Column("fixes", sa.Integer(), nullable=False),
        sa.Column("door_events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("service_day", "vehicle_id", name=op.f("pk_vehicle_day_data")),
    )


def downgrade() -> None:
    op.drop_table("vehicle_day_data")

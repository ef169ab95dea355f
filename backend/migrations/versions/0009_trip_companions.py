"""Companions (issue 15): who rode with the passenger on a trip, by rider category, and
bicycles.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trip_companions",
        sa.Column("trip_id", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trip_id", "category", name=op.f("pk_trip_companions")),
    )
    op.create_index(
        op.f("ix_trip_companions_passenger_id"), "trip_companions", ["passenger_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_trip_companions_passenger_id"), table_name="trip_companions")
    op.drop_table("trip_companions")

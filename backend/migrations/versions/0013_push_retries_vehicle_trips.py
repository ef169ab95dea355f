"""Pushes retried (issue 16): a push the push service did not take is posted again later;
and the trips of one vehicle found through an index (the operator pages' vehicle search and
trip list).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "push_retries",
        sa.Column("notification_id", BigId, nullable=False),
        sa.Column("subscription_id", BigId, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", "subscription_id", name=op.f("pk_push_retries")),
    )
    op.create_index("ix_push_retries_next_at", "push_retries", ["next_at"], unique=False)
    op.create_index(
        "ix_trips_vehicle_board",
        "trips",
        ["vehicle_id", "board_time"],
        unique=False,
        postgresql_ops={"vehicle_id": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_trips_vehicle_board", table_name="trips")
    op.drop_index("ix_push_retries_next_at", table_name="push_retries")
    op.drop_table("push_retries")

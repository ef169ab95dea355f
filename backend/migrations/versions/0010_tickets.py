"""Inspection tickets (issue 16): one per device and vehicle journey, with the seed of the
ticket's own time-code key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("ticket_id", sa.String(length=16), nullable=False),
        sa.Column("trip_id", sa.String(length=40), nullable=True),
        sa.Column("passenger_id", sa.String(length=40), nullable=True),
        sa.Column("device_id", sa.String(length=40), nullable=True),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("time_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("revoked_reason", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_tickets")),
        sa.UniqueConstraint(
            "device_id", "vehicle_id", "journey_id", name=op.f("uq_tickets_device_id")
        ),
    )
    op.create_index(op.f("ix_tickets_trip_id"), "tickets", ["trip_id"], unique=False)
    op.create_index(op.f("ix_tickets_passenger_id"), "tickets", ["passenger_id"], unique=False)
    op.create_index("ix_tickets_valid_until", "tickets", ["valid_until"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tickets_valid_until", table_name="tickets")
    op.drop_index(op.f("ix_tickets_passenger_id"), table_name="tickets")
    op.drop_index(op.f("ix_tickets_trip_id"), table_name="tickets")
    op.drop_table("tickets")

"""Notifications (issue 16): each message to a passenger about a trip at most once, and the
passengers' Web Push subscriptions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("notification_id", BigId, autoincrement=True, nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("trip_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("pushed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notification_id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "passenger_id", "trip_id", "kind", name=op.f("uq_notifications_passenger_id")
        ),
    )
    op.create_index(
        "ix_notifications_status", "notifications", ["status", "notification_id"], unique=False
    )
    op.create_index(
        "ix_notifications_passenger",
        "notifications",
        ["passenger_id", "notification_id"],
        unique=False,
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("subscription_id", BigId, autoincrement=True, nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint", sa.String(length=1000), nullable=False),
        sa.Column("p256dh", sa.String(length=200), nullable=False),
        sa.Column("auth", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscriptions_endpoint")),
    )
    op.create_index(
        op.f("ix_push_subscriptions_passenger_id"),
        "push_subscriptions",
        ["passenger_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_push_subscriptions_passenger_id"), table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
    op.drop_index("ix_notifications_passenger", table_name="notifications")
    op.drop_index("ix_notifications_status", table_name="notifications")
    op.drop_table("notifications")

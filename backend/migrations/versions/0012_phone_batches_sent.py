"""How far each phone's uploads reach (issue 12): the newest ``sent_at`` per device, read
on every rebuild of a vehicle-day a phone heard, found through an index.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_phone_batches_device_sent", "phone_batches", ["device_id", "sent_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_phone_batches_device_sent", table_name="phone_batches")

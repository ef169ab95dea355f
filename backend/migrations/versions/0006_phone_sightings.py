"""Phone sightings (issue 14): the phone uploads of beacon sightings, their rows with the
vehicle each beacon resolved to, and the phone's region and activity events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _phone_row_columns(table: str) -> list[sa.schema.SchemaItem]:
    """What every row of a phone upload has (``models._PhoneRow``)."""
    return [
        sa.Column("phone_batch_id", _BIG_ID, nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("t", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["phone_batch_id"],
            ["phone_batches.phone_batch_id"],
            name=op.f(f"fk_{table}_phone_batch_id_phone_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("phone_batch_id", "k", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "phone_batches",
        sa.Column("phone_batch_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=8), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.device_id"],
            name=op.f("fk_phone_batches_device_id_devices"),
        ),
        sa.PrimaryKeyConstraint("phone_batch_id", name=op.f("pk_phone_batches")),
        sa.UniqueConstraint("device_id", "batch_id", name=op.f("uq_phone_batches_device_id")),
    )
    op.create_index("ix_phone_batches_received", "phone_batches", ["received_at"])
    op.create_table(
        "beacon_sightings",
        *_phone_row_columns("beacon_sightings"),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("rssi", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
    )
    op.create_index(
        "ix_beacon_sightings_day_vehicle_t",
        "beacon_sightings",
        ["service_day", "vehicle_id", "t"],
    )
    op.create_index("ix_beacon_sightings_device_t", "beacon_sightings", ["device_id", "t"])
    for table, type_chars in (("phone_region_events", 8), ("phone_activity_events", 16)):
        op.create_table(
            table,
            *_phone_row_columns(table),
            sa.Column("type", sa.String(length=type_chars), nullable=False),
        )
        op.create_index(f"ix_{table}_device_t", table, ["device_id", "t"])
        op.create_index(f"ix_{table}_day", table, ["service_day"])


def downgrade() -> None:
    for table in ("phone_activity_events", "phone_region_events"):
        op.drop_index(f"ix_{table}_day", table_name=table)
        op.drop_index(f"ix_{table}_device_t", table_name=table)
        op.drop_table(table)
    op.drop_index("ix_beacon_sightings_device_t", table_name="beacon_sightings")
    op.drop_index("ix_beacon_sightings_day_vehicle_t", table_name="beacon_sightings")
    op.drop_table("beacon_sightings")
    op.drop_index("ix_phone_batches_received", table_name="phone_batches")
    op.drop_table("phone_batches")

"""Initial schema: vehicles, operators, passengers, devices, batches, events, sightings, trips.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column(
            "operator_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("operator_id", name=op.f("pk_operators")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_operators_token_sha256")),
    )
    op.create_table(
        "passengers",
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("rider_category", sa.String(length=20), nullable=False),
        sa.Column("token_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("passenger_id", name=op.f("pk_passengers")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_passengers_token_sha256")),
    )
    op.create_table(
        "reconcile_units",
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("data_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("service_day", name=op.f("pk_reconcile_units")),
    )
    op.create_table(
        "trips",
        sa.Column("trip_id", sa.String(length=40), nullable=False),
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("board_stop_id", sa.String(length=64), nullable=False),
        sa.Column("board_time", sa.BigInteger(), nullable=False),
        sa.Column("alight_stop_id", sa.String(length=64), nullable=False),
        sa.Column("alight_time", sa.BigInteger(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trip_id", name=op.f("pk_trips")),
    )
    op.create_index("ix_trips_day_vehicle", "trips", ["service_day", "vehicle_id"], unique=False)
    op.create_index(op.f("ix_trips_device_id"), "trips", ["device_id"], unique=False)
    op.create_index(op.f("ix_trips_passenger_id"), "trips", ["passenger_id"], unique=False)
    op.create_table(
        "vehicles",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.LargeBinary(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_vehicles")),
    )
    op.create_table(
        "batches",
        sa.Column(
            "batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("boot_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("window_ms", sa.Integer(), nullable=False),
        sa.Column("n_events", sa.Integer(), nullable=False),
        sa.Column("n_sightings", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.vehicle_id"], name=op.f("fk_batches_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_batches")),
        sa.UniqueConstraint("vehicle_id", "boot_id", "seq", name=op.f("uq_batches_vehicle_id")),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("device_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["passenger_id"],
            ["passengers.passenger_id"],
            name=op.f("fk_devices_passenger_id_passengers"),
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_passenger_id"), "devices", ["passenger_id"], unique=False)
    op.create_table(
        "sightings",
        sa.Column(
            "sighting_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("t", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.LargeBinary(length=16), nullable=False),
        sa.Column("rssi", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("tx", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.batch_id"],
            name=op.f("fk_sightings_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sighting_id", name=op.f("pk_sightings")),
    )
    op.create_index(
        "ix_sightings_day_vehicle_t", "sightings", ["service_day", "vehicle_id", "t"], unique=False
    )
    op.create_table(
        "vehicle_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("t", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("stop_id", sa.String(length=64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("line", sa.String(length=64), nullable=True),
        sa.Column("journey_id", sa.String(length=64), nullable=True),
        sa.Column("direction", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.batch_id"],
            name=op.f("fk_vehicle_events_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_vehicle_events")),
    )
    op.create_index(
        "ix_vehicle_events_day_vehicle_t",
        "vehicle_events",
        ["service_day", "vehicle_id", "t"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_vehicle_events_day_vehicle_t", table_name="vehicle_events")
    op.drop_table("vehicle_events")
    op.drop_index("ix_sightings_day_vehicle_t", table_name="sightings")
    op.drop_table("sightings")
    op.drop_index(op.f("ix_devices_passenger_id"), table_name="devices")
    op.drop_table("devices")
    op.drop_table("batches")
    op.drop_table("vehicles")
    op.drop_index(op.f("ix_trips_passenger_id"), table_name="trips")
    op.drop_index(op.f("ix_trips_device_id"), table_name="trips")
    op.drop_index("ix_trips_day_vehicle", table_name="trips")
    op.drop_table("trips")
    op.drop_table("reconcile_units")
    op.drop_table("passengers")
    op.drop_table("operators")

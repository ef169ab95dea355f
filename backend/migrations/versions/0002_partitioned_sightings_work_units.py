"""Sightings keyed (and on PostgreSQL partitioned) by service day; work units per vehicle-day;
trip status, be-out decision time and cross-vehicle conflict flag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SIGHTING_COLUMNS = "service_day, batch_id, k, vehicle_id, t, token, rssi, n, tx"
_COPY_OLD_SIGHTINGS = f"""
    INSERT INTO sightings ({_SIGHTING_COLUMNS})
    SELECT service_day, batch_id,
           ROW_NUMBER() OVER (PARTITION BY batch_id ORDER BY sighting_id) - 1,
           vehicle_id, t, token, rssi, n, tx
    FROM sightings_v1
"""


def _new_sightings_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("t", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.LargeBinary(length=16), nullable=False),
        sa.Column("rssi", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("tx", sa.SmallInteger(), nullable=True),
    ]


def _rename_constraints(table: str, suffix: str) -> None:
    """PostgreSQL constraint names are per schema: free them for the new table."""
    for name in ("pk_sightings", "fk_sightings_batch_id_batches"):
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {name} TO {name}{suffix}")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_sightings_day_vehicle_t", table_name="sightings")
    op.rename_table("sightings", "sightings_v1")
    if postgres:
        _rename_constraints("sightings_v1", "_v1")
        # Range-partitioned by service day; days without their own partition land in the
        # default partition until maintenance creates one (retention then drops whole days).
        # No primary or foreign key: rows are written once per batch (the batch identity is
        # unique), and per-row key checks would halve the ingest rate for nothing.
        op.execute(
            """
            CREATE TABLE sightings (
                service_day DATE NOT NULL,
                batch_id BIGINT NOT NULL,
                k INTEGER NOT NULL,
                vehicle_id VARCHAR(64) NOT NULL,
                t BIGINT NOT NULL,
                token BYTEA NOT NULL,
                rssi SMALLINT NOT NULL,
                n INTEGER NOT NULL,
                tx SMALLINT
            ) PARTITION BY RANGE (service_day)
            """
        )
        op.execute("CREATE TABLE sightings_default PARTITION OF sightings DEFAULT")
    else:
        op.create_table(
            "sightings",
            *_new_sightings_columns(),
            sa.ForeignKeyConstraint(
                ["batch_id"],
                ["batches.batch_id"],
                name=op.f("fk_sightings_batch_id_batches"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("service_day", "batch_id", "k", name=op.f("pk_sightings")),
        )
    op.create_index("ix_sightings_vehicle_day_t", "sightings", ["vehicle_id", "service_day", "t"])
    op.execute(_COPY_OLD_SIGHTINGS)
    op.drop_table("sightings_v1")

    op.create_table(
        "work_units",
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("data_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("service_day", "vehicle_id", name=op.f("pk_work_units")),
    )
    op.create_index("ix_work_units_dirty", "work_units", ["dirty", "service_day"])
    # Everything received before this release is reconciled again under the new scheme.
    op.execute(
        """
        INSERT INTO work_units (service_day, vehicle_id, dirty, generation, data_received_at)
        SELECT DISTINCT service_day, vehicle_id, TRUE, 1, CURRENT_TIMESTAMP FROM sightings
        """
    )
    op.drop_table("reconcile_units")

    with op.batch_alter_table("trips") as batch:
        batch.add_column(sa.Column("score", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("stops_travelled", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(length=8), nullable=False, server_default="closed")
        )
        batch.add_column(sa.Column("alight_known_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("chain_id", sa.String(length=40), nullable=True))
        batch.add_column(
            sa.Column("conflict_lost", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("trips") as batch:
        batch.drop_column("conflict_lost")
        batch.drop_column("chain_id")
        batch.drop_column("alight_known_at")
        batch.drop_column("status")
        batch.drop_column("stops_travelled")
        batch.drop_column("score")
    op.create_table(
        "reconcile_units",
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("data_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("service_day", name=op.f("pk_reconcile_units")),
    )
    op.drop_index("ix_work_units_dirty", table_name="work_units")
    op.drop_table("work_units")

    op.drop_index("ix_sightings_vehicle_day_t", table_name="sightings")
    op.rename_table("sightings", "sightings_v2")
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
    op.create_index("ix_sightings_day_vehicle_t", "sightings", ["service_day", "vehicle_id", "t"])
    op.execute(
        "INSERT INTO sightings (batch_id, vehicle_id, service_day, t, token, rssi, n, tx) "
        "SELECT batch_id, vehicle_id, service_day, t, token, rssi, n, tx FROM sightings_v2 "
        "ORDER BY batch_id, k"
    )
    op.drop_table("sightings_v2")

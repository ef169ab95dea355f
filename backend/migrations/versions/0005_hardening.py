"""Hardening (issue 11): retention marks and late data (history is final once its evidence
is gone), failing work units back off and park, login attempts remember their address, and
operator web sessions live on the server.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("work_units") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("parked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "retention_marks",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("purged_before", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_retention_marks")),
    )
    _seed_retention_marks()
    op.create_table(
        "late_data",
        sa.Column("late_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("late_id", name=op.f("pk_late_data")),
    )
    op.create_index("ix_late_data_received", "late_data", ["received_at"])
    with op.batch_alter_table("login_attempts") as batch:
        batch.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch.create_index(op.f("ix_login_attempts_address"), ["address"])
    op.create_table(
        "operator_sessions",
        sa.Column("session_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("operator_id", _BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.operator_id"],
            name=op.f("fk_operator_sessions_operator_id_operators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_sha256", name=op.f("pk_operator_sessions")),
    )
    op.create_index(op.f("ix_operator_sessions_operator_id"), "operator_sessions", ["operator_id"])


def _seed_retention_marks() -> None:
    """A database that ran before 0005 has had retention applied without marks: what it
    deleted is read off the data, so no day it purged is ever rebuilt from nothing.

    Sightings: trips of days before the oldest day with sightings lost their evidence (with
    no sightings left at all, every day with trips did). Trips: billed months before the
    oldest day with trips lost trips (with no trips left, every billed month did).
    """
    bind = op.get_bind()
    now = sa.func.now() if bind.dialect.name == "postgresql" else sa.func.current_timestamp()
    oldest_sighting = bind.execute(sa.text("SELECT MIN(service_day) FROM sightings")).scalar()
    newest_trip = bind.execute(sa.text("SELECT MAX(service_day) FROM trips")).scalar()
    oldest_trip = bind.execute(sa.text("SELECT MIN(service_day) FROM trips")).scalar()
    marks: dict[str, dt.date] = {}
    if newest_trip is not None:
        newest, oldest = _date(newest_trip), _date(oldest_trip)
        if oldest_sighting is None:
            marks["sightings"] = newest + dt.timedelta(days=1)
        elif oldest < _date(oldest_sighting):
            marks["sightings"] = _date(oldest_sighting)
    oldest_month = bind.execute(sa.text("SELECT MIN(month) FROM ledger_entries")).scalar()
    newest_month = bind.execute(sa.text("SELECT MAX(month) FROM ledger_entries")).scalar()
    if oldest_month is not None:
        first_billed = dt.date.fromisoformat(f"{oldest_month}-01")
        if oldest_trip is None:
            last = dt.date.fromisoformat(f"{newest_month}-01")
            marks["trips"] = (last + dt.timedelta(days=32)).replace(day=1)
        elif first_billed < _date(oldest_trip).replace(day=1):
            marks["trips"] = _date(oldest_trip)
    table = sa.table(
        "retention_marks",
        sa.column("kind", sa.String),
        sa.column("purged_before", sa.Date),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    for kind, before in marks.items():
        bind.execute(table.insert().values(kind=kind, purged_before=before, updated_at=now))


def _date(value: object) -> dt.date:
    # SQLite hands dates back as text.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def downgrade() -> None:
    op.drop_index(op.f("ix_operator_sessions_operator_id"), table_name="operator_sessions")
    op.drop_table("operator_sessions")
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_index(op.f("ix_login_attempts_address"))
        batch.drop_column("address")
    op.drop_index("ix_late_data_received", table_name="late_data")
    op.drop_table("late_data")
    op.drop_table("retention_marks")
    with op.batch_alter_table("work_units") as batch:
        batch.drop_column("parked")
        batch.drop_column("failed_at")
        batch.drop_column("last_error")
        batch.drop_column("attempts")

"""Billing ledger (append-only, enforced by triggers), invoices, disputes, trip corrections,
operator roles and passwords, login throttling.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=10), nullable=False, server_default="admin")
        )
        batch.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))

    op.create_table(
        "trip_corrections",
        sa.Column("correction_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("trip_id", sa.String(length=40), nullable=False),
        sa.Column("board_stop_id", sa.String(length=64), nullable=True),
        sa.Column("alight_stop_id", sa.String(length=64), nullable=True),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.Column("dispute_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("correction_id", name=op.f("pk_trip_corrections")),
    )
    op.create_index("ix_trip_corrections_trip", "trip_corrections", ["trip_id", "correction_id"])
    op.create_table(
        "disputes",
        sa.Column("dispute_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("trip_id", sa.String(length=40), nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("resolution", sa.String(length=1000), nullable=True),
        sa.Column("resolved_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("dispute_id", name=op.f("pk_disputes")),
    )
    op.create_index("ix_disputes_status", "disputes", ["status", "created_at"])
    op.create_index(op.f("ix_disputes_passenger_id"), "disputes", ["passenger_id"])
    op.create_table(
        "ledger_entries",
        sa.Column("entry_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reverses", sa.BigInteger(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_ledger_entries")),
    )
    op.create_index("ix_ledger_passenger_month", "ledger_entries", ["passenger_id", "month"])
    op.create_table(
        "invoices",
        sa.Column("invoice_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_invoices")),
        sa.UniqueConstraint(
            "passenger_id", "month", "version", name=op.f("uq_invoices_passenger_id")
        ),
    )
    op.create_index(op.f("ix_invoices_passenger_id"), "invoices", ["passenger_id"])
    op.create_table(
        "login_attempts",
        sa.Column("attempt_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_name_at", "login_attempts", ["name", "attempted_at"])

    # The ledger is append-only: the database itself refuses changes and deletions.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ledger_entries is append-only: post a reversal instead';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ledger_no_{action.lower()} BEFORE {action} ON ledger_entries "
                "BEGIN SELECT RAISE(ABORT, "
                "'ledger_entries is append-only: post a reversal instead'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_append_only ON ledger_entries")
        op.execute("DROP FUNCTION ledger_append_only()")
    op.drop_index("ix_login_attempts_name_at", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_index(op.f("ix_invoices_passenger_id"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_index("ix_ledger_passenger_month", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_disputes_passenger_id"), table_name="disputes")
    op.drop_index("ix_disputes_status", table_name="disputes")
    op.drop_table("disputes")
    op.drop_index("ix_trip_corrections_trip", table_name="trip_corrections")
    op.drop_table("trip_corrections")
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("password_hash")
        batch.drop_column("role")

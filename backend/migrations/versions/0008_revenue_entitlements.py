"""Revenue sharing and entitlements (issue 15): the transit company of each vehicle, each
ledger entry's parts per company, and tickets riders hold elsewhere.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("vehicles") as batch:
        batch.add_column(sa.Column("company", sa.String(length=16), nullable=True))
    op.create_table(
        "revenue_shares",
        sa.Column("entry_id", _BIG_ID, nullable=False),
        sa.Column("company", sa.String(length=16), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("passenger_km", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.entry_id"],
            name=op.f("fk_revenue_shares_entry_id_ledger_entries"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("entry_id", "company", name=op.f("pk_revenue_shares")),
    )
    op.create_index(
        "ix_revenue_shares_month_company", "revenue_shares", ["month", "company"], unique=False
    )
    op.create_table(
        "entitlements",
        sa.Column("entitlement_id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("passenger_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("scope_areas", sa.String(length=400), nullable=True),
        sa.Column("evidence_ref", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entitlement_id", name=op.f("pk_entitlements")),
    )
    op.create_index(
        op.f("ix_entitlements_passenger_id"), "entitlements", ["passenger_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_entitlements_passenger_id"), table_name="entitlements")
    op.drop_table("entitlements")
    op.drop_index("ix_revenue_shares_month_company", table_name="revenue_shares")
    op.drop_table("revenue_shares")
    with op.batch_alter_table("vehicles") as batch:
        batch.drop_column("company")

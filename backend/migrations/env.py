"""Alembic environment: migrations run on a connection handed in by ``backend.db.upgrade``."""

from alembic import context
from sqlalchemy import Connection

from backend.models import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached from the plain alembic CLI
    raise RuntimeError("run migrations through backend.db.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

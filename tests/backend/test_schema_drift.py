"""The migrations build exactly the schema the ORM models describe (no drift between
``backend/models.py`` and ``backend/migrations``), on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.models import Base

# PostgreSQL partitions ``sightings`` by service day (migration 0002): the partitions and the
# default partition are tables the models do not describe.
_PARTITION_PREFIX = "sightings_"


def _relevant(diff: object) -> bool:
    op = diff[0] if isinstance(diff, tuple) else diff[0][0]  # type: ignore[index]
    if op == "remove_table":
        return not diff[1].name.startswith(_PARTITION_PREFIX)  # type: ignore[index]
    if op == "remove_index":
        return not diff[1].table.name.startswith(_PARTITION_PREFIX)  # type: ignore[index]
    # The partitioned table keeps no foreign key to ``batches`` (0002): retention drops
    # whole partitions, and each upload's rows are written with their batch anyway.
    return not (op == "add_fk" and diff[1].parent.name == "sightings")  # type: ignore[index]


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        diffs = [d for d in compare_metadata(context, Base.metadata) if _relevant(d)]
    assert diffs == []

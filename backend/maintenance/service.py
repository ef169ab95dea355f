"""Housekeeping: raw-sighting retention and, on PostgreSQL, the service-day partitions.

Raw sightings are personal data: they are kept only as long as disputes need them
(``BIBO_SIGHTINGS_RETENTION_DAYS``, default 14), the vehicles' and the phones' alike; trips
are kept 12 months.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backend.const import PARTITIONS_AHEAD_DAYS
from backend.maintenance import repository as maintenance_repo
from backend.phones import repository as phones_repo
from backend.tickets import repository as tickets_repo
from backend.timeutil import service_day_bounds
from backend.trips import repository as trips_repo

log = logging.getLogger(__name__)


def partition_name(day: dt.date) -> str:
    return f"sightings_p{day:%Y%m%d}"


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def sighting_partitions(session: Session) -> dict[str, dt.date]:
    """The per-day partitions of ``sightings`` on PostgreSQL (name -> service day)."""
    out = {}
    for name in maintenance_repo.sighting_partition_tables(session):
        if name.startswith("sightings_p"):
            digits = name[len("sightings_p") :]
            out[name] = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    return out


def ensure_partitions(session: Session, today: dt.date) -> list[str]:
    """Create the partitions of today and the next days before their data arrives.

    A day whose rows already sit in the default partition keeps them there (creating its
    partition would have to move them); retention removes them from there in time.
    """
    if not _postgres(session):
        return []
    existing = set(sighting_partitions(session))
    created = []
    for offset in range(PARTITIONS_AHEAD_DAYS + 1):
        day = today + dt.timedelta(days=offset)
        name = partition_name(day)
        if name in existing:
            continue
        if maintenance_repo.default_partition_has_day(session, day):
            continue
        try:
            with session.begin_nested():
                maintenance_repo.create_day_partition(session, name, day)
            created.append(name)
        except DBAPIError as exc:  # a concurrent upload put the day's first rows in default
            log.info("partition %s not created now: %s", name, exc.orig)
    return created


@dataclass(frozen=True)
class RetentionResult:
    sightings_before: dt.date
    partitions_dropped: int
    sightings_deleted: int
    phone_sightings_deleted: int
    trips_deleted: int


def retention_cutoff(today: dt.date, sightings_days: int) -> dt.date:
    """The first service day whose raw sightings are kept."""
    return today - dt.timedelta(days=sightings_days)


def apply_retention(
    session: Session,
    today: dt.date,
    sightings_days: int,
    trips_days: int,
    now: dt.datetime,
) -> RetentionResult:
    """Delete raw sightings of service days older than ``sightings_days`` and trips older
    than ``trips_days`` (service days before ``today`` minus the period). Phone uploads go
    with the sightings: their rows of those days, and the uploads received before the first
    kept day with all their rows.

    The days before each cutoff are marked final (``retention_marks``): from then on no
    rebuild changes their trips and no re-bill changes the months whose trips are gone.
    ``now`` stamps the marks.
    """
    maintenance_repo.lock_retention(session)
    cutoff = retention_cutoff(today, sightings_days)
    trips_cutoff = today - dt.timedelta(days=trips_days)
    maintenance_repo.advance_purge_mark(session, maintenance_repo.SIGHTINGS_MARK, cutoff, now)
    maintenance_repo.advance_purge_mark(session, maintenance_repo.TRIPS_MARK, trips_cutoff, now)
    dropped = 0
    if _postgres(session):
        for name, day in sorted(sighting_partitions(session).items()):
            if day < cutoff:
                maintenance_repo.drop_partition(session, name)
                dropped += 1
    deleted = maintenance_repo.delete_sightings_before(session, cutoff)
    kept_from = dt.datetime.fromtimestamp(service_day_bounds(cutoff)[0] / 1000, dt.UTC)
    phone_deleted = phones_repo.delete_phone_data_before(session, cutoff, kept_from)
    # Expired inspection tickets name a device and a ride: kept as long as raw sightings.
    tickets_repo.delete_expired_before(session, service_day_bounds(cutoff)[0])
    # Units of final days have nothing left to do: no rebuild may change them. A unit that
    # failed or was parked there is logged one last time and let go.
    settled = trips_repo.settle_final_units(session, cutoff)
    if settled:
        log.warning(
            "retention: %d reconciliation units before %s were pending, failing or parked; "
            "their days are final as they stand: %s",
            len(settled),
            cutoff,
            ", ".join(f"{day} {vehicle}" for day, vehicle in settled),
        )
    trips = maintenance_repo.delete_trips_before(session, trips_cutoff)
    return RetentionResult(cutoff, dropped, deleted, phone_deleted, trips)

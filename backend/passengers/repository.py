"""SQL of passengers: registration and devices, their categories, a passenger's own data
(what the export reads and what erasure deletes or redacts) and their disputes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from backend import models
from backend.const import IN_LIST_CHUNK


def add_passenger(
    session: Session, passenger_id: str, rider_category: str, token_sha256: bytes
) -> None:
    session.add(
        models.Passenger(
            passenger_id=passenger_id, rider_category=rider_category, token_sha256=token_sha256
        )
    )
    session.flush()  # devices reference it; the ORM has no relationship to order the inserts


def passenger_by_token(session: Session, token_sha256: bytes) -> models.Passenger | None:
    return session.scalar(
        select(models.Passenger).where(models.Passenger.token_sha256 == token_sha256)
    )


def passenger_categories(session: Session, passenger_ids: Sequence[str]) -> dict[str, str]:
    """The rider category of each of these passengers that exists (a query per
    ``IN_LIST_CHUNK`` ids: a device import names tens of thousands)."""
    p = models.Passenger
    found: dict[str, str] = {}
    for start in range(0, len(passenger_ids), IN_LIST_CHUNK):
        chunk = passenger_ids[start : start + IN_LIST_CHUNK]
        rows = session.execute(
            select(p.passenger_id, p.rider_category).where(p.passenger_id.in_(chunk))
        )
        found.update({passenger_id: category for passenger_id, category in rows})
    return found


def add_device(session: Session, device_id: str, passenger_id: str, device_key: bytes) -> None:
    add_devices(session, [(device_id, passenger_id, device_key)])


def add_devices(session: Session, devices: Sequence[tuple[str, str, bytes]]) -> None:
    """Register ``(device_id, passenger_id, device_key)`` devices (their passengers exist)."""
    if not devices:
        return
    session.add_all(
        models.Device(device_id=device_id, passenger_id=passenger_id, device_key=key)
        for device_id, passenger_id, key in devices
    )
    _devices_changed(session)


def _devices_changed(session: Session) -> None:
    """Raise the registry's version (in the transaction that changed the devices)."""
    r = models.DeviceRegistry
    bumped = session.execute(update(r).where(r.registry_id == 1).values(version=r.version + 1))
    if not bumped.rowcount:  # type: ignore[attr-defined]
        # Migration 0016 makes the row; a table emptied since (a data-only restore, the test
        # suite's clean-up between tests) gets it back here, and reads as version 0 until then.
        session.execute(insert(r).values(registry_id=1, version=1))


def device_key(session: Session, device_id: str) -> bytes | None:
    """The device's token key ``K``, or None for an unknown device."""
    d = models.Device
    return session.scalar(select(d.device_key).where(d.device_id == device_id))


def device_registry_version(session: Session) -> int:
    """Goes up whenever a device is added or removed (one primary-key read)."""
    r = models.DeviceRegistry
    return session.scalar(select(r.version).where(r.registry_id == 1)) or 0


def all_devices(session: Session) -> list[tuple[str, bytes, str]]:
    """``(device_id, device_key, passenger_id)`` of every registered device, by id."""
    rows = session.execute(
        select(
            models.Device.device_id, models.Device.device_key, models.Device.passenger_id
        ).order_by(models.Device.device_id)
    )
    return [(device_id, key, passenger_id) for device_id, key, passenger_id in rows]


def passenger_category(session: Session, passenger_id: str) -> str | None:
    return session.scalar(
        select(models.Passenger.rider_category).where(models.Passenger.passenger_id == passenger_id)
    )


def passenger_disputes(session: Session, passenger_id: str) -> list[models.Dispute]:
    """The passenger's disputes, oldest first."""
    d = models.Dispute
    return list(
        session.scalars(select(d).where(d.passenger_id == passenger_id).order_by(d.dispute_id))
    )


def passenger(session: Session, passenger_id: str) -> models.Passenger | None:
    """The passenger with this id, if any."""
    return session.get(models.Passenger, passenger_id)


def devices(session: Session, passenger_id: str) -> list[models.Device]:
    """The passenger's registered devices."""
    d = models.Device
    return list(session.scalars(select(d).where(d.passenger_id == passenger_id)))


def trips(session: Session, passenger_id: str) -> list[models.Trip]:
    """The passenger's trips (billed or not), by boarding time."""
    t = models.Trip
    return list(
        session.scalars(select(t).where(t.passenger_id == passenger_id).order_by(t.board_time))
    )


def delete_personal_rows(session: Session, passenger_id: str) -> None:
    """Delete the passenger's trip corrections, companions, trips, disputes, entitlements and
    devices."""
    t = models.Trip
    trip_ids = select(t.trip_id).where(t.passenger_id == passenger_id)
    c = models.TripCorrection
    session.execute(delete(c).where(c.trip_id.in_(trip_ids)))
    session.execute(delete(t).where(t.passenger_id == passenger_id))
    session.execute(delete(models.Dispute).where(models.Dispute.passenger_id == passenger_id))
    e = models.Entitlement
    session.execute(delete(e).where(e.passenger_id == passenger_id))
    k = models.TripCompanion
    session.execute(delete(k).where(k.passenger_id == passenger_id))
    gone = session.execute(delete(models.Device).where(models.Device.passenger_id == passenger_id))
    if gone.rowcount:  # type: ignore[attr-defined]
        _devices_changed(session)


def delete_passenger(session: Session, passenger_id: str) -> None:
    """Delete the passenger row itself."""
    p = models.Passenger
    session.execute(delete(p).where(p.passenger_id == passenger_id))


def dispute(session: Session, dispute_id: int) -> models.Dispute | None:
    """The dispute with this id, if any."""
    return session.get(models.Dispute, dispute_id)


def open_dispute_of_trip(session: Session, trip_id: str) -> models.Dispute | None:
    """The trip's open dispute, if it has one."""
    d = models.Dispute
    return session.scalar(select(d).where(d.trip_id == trip_id, d.status == "open"))


def add_dispute(
    session: Session, trip_id: str, passenger_id: str, reason: str, now: dt.datetime
) -> models.Dispute:
    """Store a new open dispute and return it with its id assigned."""
    row = models.Dispute(
        trip_id=trip_id, passenger_id=passenger_id, reason=reason, status="open", created_at=now
    )
    session.add(row)
    session.flush()
    return row


def disputes_in(session: Session, status: str | None) -> list[models.Dispute]:
    """Disputes in ``status`` (every one for None), oldest first: the operators' queue."""
    d = models.Dispute
    stmt = select(d).order_by(d.created_at, d.dispute_id)
    if status is not None:
        stmt = stmt.where(d.status == status)
    return list(session.scalars(stmt))


def trip_disputes(session: Session, trip_id: str) -> list[models.Dispute]:
    """The trip's disputes, oldest first."""
    d = models.Dispute
    return list(session.scalars(select(d).where(d.trip_id == trip_id).order_by(d.dispute_id)))


# --- entitlements -------------------------------------------------------------------------


def add_entitlement(session: Session, **values: object) -> models.Entitlement:
    entitlement = models.Entitlement(**values)
    session.add(entitlement)
    session.flush()
    return entitlement


def entitlement(session: Session, entitlement_id: int) -> models.Entitlement | None:
    return session.get(models.Entitlement, entitlement_id)


def passenger_entitlements(session: Session, passenger_id: str) -> list[models.Entitlement]:
    """Every entitlement the passenger registered (any status), oldest first."""
    e = models.Entitlement
    return list(
        session.scalars(select(e).where(e.passenger_id == passenger_id).order_by(e.entitlement_id))
    )


def entitlements_in(session: Session, status: str | None) -> list[models.Entitlement]:
    """Entitlements in ``status`` (all for None), oldest first: the operators' queue."""
    e = models.Entitlement
    query = select(e).order_by(e.entitlement_id)
    if status is not None:
        query = query.where(e.status == status)
    return list(session.scalars(query))


# --- companions -------------------------------------------------------------------------


def set_companions(
    session: Session, trip_id: str, passenger_id: str, counts: dict[str, int], now: dt.datetime
) -> None:
    """Replace who rode with the passenger on the trip (categories with a count of 0 go)."""
    k = models.TripCompanion
    session.execute(delete(k).where(k.trip_id == trip_id))
    session.add_all(
        k(trip_id=trip_id, category=c, count=n, passenger_id=passenger_id, created_at=now)
        for c, n in sorted(counts.items())
        if n > 0
    )
    session.flush()


def companions_of(session: Session, trip_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each of these trips' companions by category (trips without any are left out; a query
    per ``IN_LIST_CHUNK`` ids)."""
    k = models.TripCompanion
    found: dict[str, dict[str, int]] = {}
    for start in range(0, len(trip_ids), IN_LIST_CHUNK):
        chunk = trip_ids[start : start + IN_LIST_CHUNK]
        rows = session.execute(select(k.trip_id, k.category, k.count).where(k.trip_id.in_(chunk)))
        for trip_id, category, count in rows:
            found.setdefault(trip_id, {})[category] = count
    return found

"""SQL for a passenger's own data: what the export reads and what erasure deletes or
redacts."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend import models


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


def disputes(session: Session, passenger_id: str) -> list[models.Dispute]:
    """The passenger's disputes."""
    d = models.Dispute
    return list(session.scalars(select(d).where(d.passenger_id == passenger_id)))


def invoices(session: Session, passenger_id: str) -> list[models.Invoice]:
    """The passenger's invoices (every version)."""
    i = models.Invoice
    return list(session.scalars(select(i).where(i.passenger_id == passenger_id)))


def delete_personal_rows(session: Session, passenger_id: str) -> None:
    """Delete the passenger's trip corrections, trips, disputes and devices."""
    t = models.Trip
    trip_ids = select(t.trip_id).where(t.passenger_id == passenger_id)
    c = models.TripCorrection
    session.execute(delete(c).where(c.trip_id.in_(trip_ids)))
    session.execute(delete(t).where(t.passenger_id == passenger_id))
    session.execute(delete(models.Dispute).where(models.Dispute.passenger_id == passenger_id))
    session.execute(delete(models.Device).where(models.Device.passenger_id == passenger_id))


def set_invoice_document(session: Session, invoice_id: int, document: str) -> None:
    """Replace the stored document of one invoice."""
    i = models.Invoice
    session.execute(update(i).where(i.invoice_id == invoice_id).values(document=document))


def delete_passenger(session: Session, passenger_id: str) -> None:
    """Delete the passenger row itself."""
    p = models.Passenger
    session.execute(delete(p).where(p.passenger_id == passenger_id))

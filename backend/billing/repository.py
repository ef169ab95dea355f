"""SQL of billing: a passenger's trips and corrections as billing reads them, the
append-only ledger, invoices, and the ledger entries' revenue shares per transit company."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend import models
from backend.db import insert_rows


def passenger_trips(
    session: Session, passenger_id: str, first_day: dt.date, last_day: dt.date
) -> list[models.Trip]:
    t = models.Trip
    return list(
        session.scalars(
            select(t)
            .where(
                t.passenger_id == passenger_id,
                t.service_day >= first_day,
                t.service_day <= last_day,
                t.conflict_lost.is_(False),
            )
            .order_by(t.board_time, t.trip_id)
        )
    )


def passenger_trips_boarding(
    session: Session, passenger_id: str, before_ms: int, since_ms: int | None = None
) -> list[models.Trip]:
    """A passenger's trips boarding in ``[since_ms, before_ms)`` (from the oldest kept trip
    when ``since_ms`` is None), in boarding order. Billing periods follow the local calendar
    of the boarding, not the service day."""
    t = models.Trip
    query = select(t).where(
        t.passenger_id == passenger_id,
        t.board_time < before_ms,
        t.conflict_lost.is_(False),
    )
    if since_ms is not None:
        query = query.where(t.board_time >= since_ms)
    return list(session.scalars(query.order_by(t.board_time, t.trip_id)))


def passengers_boarding(
    session: Session, since_ms: int, before_ms: int, first_day: dt.date, last_day: dt.date
) -> list[str]:
    """Passengers with a trip boarding in ``[since_ms, before_ms)``; ``first_day`` ..
    ``last_day`` are service days holding every such trip (they let the day index work)."""
    t = models.Trip
    return list(
        session.scalars(
            select(t.passenger_id)
            .where(
                t.service_day >= first_day,
                t.service_day <= last_day,
                t.board_time >= since_ms,
                t.board_time < before_ms,
            )
            .distinct()
            .order_by(t.passenger_id)
        )
    )


def passengers_with_trips(session: Session, first_day: dt.date, last_day: dt.date) -> list[str]:
    t = models.Trip
    return list(
        session.scalars(
            select(t.passenger_id)
            .where(t.service_day >= first_day, t.service_day <= last_day)
            .distinct()
            .order_by(t.passenger_id)
        )
    )


def passengers_with_ledger(session: Session, month: str) -> list[str]:
    e = models.LedgerEntry
    return list(session.scalars(select(e.passenger_id).where(e.month == month).distinct()))


def latest_corrections(
    session: Session, trip_ids: Sequence[str]
) -> dict[str, models.TripCorrection]:
    if not trip_ids:
        return {}
    c = models.TripCorrection
    rows = session.scalars(
        select(c).where(c.trip_id.in_(trip_ids)).order_by(c.trip_id, c.correction_id)
    )
    return {row.trip_id: row for row in rows}  # the newest per trip wins


def add_correction(session: Session, **values: Any) -> models.TripCorrection:
    correction = models.TripCorrection(**values)
    session.add(correction)
    session.flush()
    return correction


def live_charges(session: Session, passenger_id: str, month: str) -> list[models.LedgerEntry]:
    """Charges of a month that no reversal cancels, oldest first."""
    e = models.LedgerEntry
    reversed_ids = select(e.reverses).where(
        e.passenger_id == passenger_id, e.month == month, e.reverses.is_not(None)
    )
    return list(
        session.scalars(
            select(e)
            .where(
                e.passenger_id == passenger_id,
                e.month == month,
                e.kind == "charge",
                e.entry_id.not_in(reversed_ids),
            )
            .order_by(e.entry_id)
        )
    )


def post_ledger_entry(
    session: Session,
    passenger_id: str,
    month: str,
    kind: str,
    amount_cents: int,
    explanation: str,
    now: dt.datetime,
    reverses: int | None = None,
) -> models.LedgerEntry:
    entry = models.LedgerEntry(
        passenger_id=passenger_id,
        month=month,
        kind=kind,
        amount_cents=amount_cents,
        reverses=reverses,
        explanation=explanation,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def ledger_balance(session: Session, passenger_id: str, month: str) -> int:
    e = models.LedgerEntry
    total = session.scalar(
        select(func.coalesce(func.sum(e.amount_cents), 0)).where(
            e.passenger_id == passenger_id, e.month == month
        )
    )
    return int(total or 0)


def ledger_entries(session: Session, passenger_id: str) -> list[models.LedgerEntry]:
    e = models.LedgerEntry
    return list(
        session.scalars(select(e).where(e.passenger_id == passenger_id).order_by(e.entry_id))
    )


def latest_invoice(session: Session, passenger_id: str, month: str) -> models.Invoice | None:
    i = models.Invoice
    return session.scalar(
        select(i)
        .where(i.passenger_id == passenger_id, i.month == month)
        .order_by(i.version.desc())
        .limit(1)
    )


def add_invoice(
    session: Session,
    passenger_id: str,
    month: str,
    version: int,
    total_cents: int,
    document: str,
    now: dt.datetime,
) -> models.Invoice:
    invoice = models.Invoice(
        passenger_id=passenger_id,
        month=month,
        version=version,
        total_cents=total_cents,
        document=document,
        created_at=now,
    )
    session.add(invoice)
    session.flush()
    return invoice


def passenger_invoices(session: Session, passenger_id: str) -> list[models.Invoice]:
    i = models.Invoice
    return list(
        session.scalars(
            select(i).where(i.passenger_id == passenger_id).order_by(i.month, i.version)
        )
    )


def invoice(session: Session, invoice_id: int) -> models.Invoice | None:
    """The invoice with this id, if any."""
    return session.get(models.Invoice, invoice_id)


def set_invoice_documents(session: Session, documents: dict[int, str]) -> None:
    """Replace the stored documents of these invoices (invoice id -> document): one bulk
    UPDATE by primary key, not a statement per invoice."""
    if documents:
        rows = [{"invoice_id": i, "document": doc} for i, doc in documents.items()]
        session.execute(update(models.Invoice), rows)


# --- revenue apportionment (backend/billing/apportionment.py) -------------------------------


def vehicle_companies(session: Session, vehicle_ids: Sequence[str]) -> dict[str, str | None]:
    """The transit company of each registered vehicle among ``vehicle_ids`` (None where it
    has none); an unregistered id is left out. One query."""
    if not vehicle_ids:
        return {}
    v = models.Vehicle
    rows = session.execute(
        select(v.vehicle_id, v.company).where(v.vehicle_id.in_(sorted(set(vehicle_ids))))
    )
    return {vehicle_id: company for vehicle_id, company in rows}


def add_revenue_shares(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert revenue shares (``entry_id, company, month, amount_cents, passenger_km``): one
    multi-row INSERT."""
    insert_rows(session, models.RevenueShare, rows)


def revenue_shares(session: Session, entry_id: int) -> list[tuple[str, int, float]]:
    """``(company, amount_cents, passenger_km)`` of one ledger entry's shares, by company."""
    s = models.RevenueShare
    rows = session.execute(
        select(s.company, s.amount_cents, s.passenger_km)
        .where(s.entry_id == entry_id)
        .order_by(s.company)
    )
    return [(company, int(amount), float(km)) for company, amount, km in rows]


def month_share_totals(session: Session, month: str) -> list[tuple[str, str, int, float, int]]:
    """``(company, entry kind, cents, passenger_km, entries)`` summed over the revenue shares
    of a billing month, per company and kind of ledger entry."""
    s, e = models.RevenueShare, models.LedgerEntry
    rows = session.execute(
        select(
            s.company,
            e.kind,
            func.sum(s.amount_cents),
            func.sum(s.passenger_km),
            func.count(),
        )
        .join(e, e.entry_id == s.entry_id)
        .where(s.month == month)
        .group_by(s.company, e.kind)
        .order_by(s.company, e.kind)
    )
    return [
        (company, kind, int(cents or 0), float(km or 0.0), int(n))
        for company, kind, cents, km, n in rows
    ]


def month_unshared_totals(session: Session, month: str) -> list[tuple[str, int, int]]:
    """``(entry kind, cents, entries)`` of a billing month's ledger entries that have no
    revenue share (posted before apportionment existed)."""
    e, s = models.LedgerEntry, models.RevenueShare
    shared = select(s.entry_id).where(s.entry_id == e.entry_id).exists()
    rows = session.execute(
        select(e.kind, func.sum(e.amount_cents), func.count())
        .where(e.month == month, ~shared)
        .group_by(e.kind)
        .order_by(e.kind)
    )
    return [(kind, int(cents or 0), int(n)) for kind, cents, n in rows]


def month_ledger_total(session: Session, month: str) -> tuple[int, int]:
    """``(cents, entries)``: the sum of every ledger entry of a billing month, and how many."""
    e = models.LedgerEntry
    cents, n = session.execute(
        select(func.coalesce(func.sum(e.amount_cents), 0), func.count()).where(e.month == month)
    ).one()
    return int(cents or 0), int(n)

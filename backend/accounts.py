"""A passenger's own view of bibo: live status, everything stored about them, and erasure."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from backend import billing, repository
from backend.repositories import accounts as accounts_repo


@dataclass(frozen=True)
class LiveStatus:
    """``checked_in`` on ``line`` since ``stop_id`` at ``at``; or ``checked_out`` at
    ``stop_id`` at ``at``; or ``none`` (no trip in the last two service days)."""

    state: str
    line: str | None = None
    vehicle_id: str | None = None
    stop_id: str | None = None
    at: int | None = None
    trip_id: str | None = None


def live_status(session: Session, passenger_id: str, today: dt.date) -> LiveStatus:
    trips = billing.effective_trips(session, passenger_id, today - dt.timedelta(days=1), today)
    if not trips:
        return LiveStatus("none")
    last = max(trips, key=lambda t: (t.board_time, t.trip_id))
    if last.status == "open":
        return LiveStatus(
            "checked_in",
            last.line,
            last.vehicle_id,
            last.board_stop_id,
            last.board_time,
            last.trip_id,
        )
    return LiveStatus(
        "checked_out",
        last.line,
        last.vehicle_id,
        last.alight_stop_id,
        last.alight_time,
        last.trip_id,
    )


def export(session: Session, passenger_id: str) -> dict[str, Any]:
    """Everything bibo keeps that names this passenger (GDPR Art. 15/20), as JSON data.

    Device keys are not included: they are secrets, and a new device can be registered.
    """
    passenger = accounts_repo.passenger(session, passenger_id)
    if passenger is None:
        raise KeyError(passenger_id)
    devices = accounts_repo.devices(session, passenger_id)
    trips = accounts_repo.trips(session, passenger_id)
    disputes = accounts_repo.disputes(session, passenger_id)
    invoices = accounts_repo.invoices(session, passenger_id)
    return {
        "version": 1,
        "passenger": {
            "passenger_id": passenger.passenger_id,
            "rider_category": passenger.rider_category,
            "created_at": passenger.created_at.isoformat(),
        },
        "devices": [
            {"device_id": d.device_id, "created_at": d.created_at.isoformat()} for d in devices
        ],
        "trips": [
            {
                "trip_id": t.trip_id,
                "service_day": t.service_day.isoformat(),
                "vehicle_id": t.vehicle_id,
                "line": t.line,
                "board_stop_id": t.board_stop_id,
                "board_time": t.board_time,
                "alight_stop_id": t.alight_stop_id,
                "alight_time": t.alight_time,
                "confidence": t.confidence,
                "billed": not t.conflict_lost,
            }
            for t in trips
        ],
        "disputes": [
            {
                "dispute_id": d.dispute_id,
                "trip_id": d.trip_id,
                "reason": d.reason,
                "status": d.status,
                "resolution": d.resolution,
                "created_at": d.created_at.isoformat(),
            }
            for d in disputes
        ],
        "invoices": [json.loads(i.document) | {"version_issued": i.version} for i in invoices],
        "ledger": [
            {
                "entry_id": e.entry_id,
                "month": e.month,
                "kind": e.kind,
                "amount_cents": e.amount_cents,
                "created_at": e.created_at.isoformat(),
            }
            for e in repository.ledger_entries(session, passenger_id)
        ],
    }


def delete_account(session: Session, passenger_id: str) -> None:
    """Erase the passenger's personal data; the ledger stays, pseudonymised.

    The passenger row, devices (keys: old tokens can no longer be linked to anyone),
    trips, disputes and corrections go. Ledger entries stay, as §147 AO requires, under the
    random passenger id that now names nobody; invoices keep only their totals.
    """
    accounts_repo.delete_personal_rows(session, passenger_id)
    for invoice in accounts_repo.invoices(session, passenger_id):
        redacted = {
            "version": 1,
            "passenger_id": passenger_id,
            "month": invoice.month,
            "total_cents": invoice.total_cents,
            "redacted": "account deleted: trips and products removed",
        }
        accounts_repo.set_invoice_document(
            session, invoice.invoice_id, json.dumps(redacted, sort_keys=True)
        )
    accounts_repo.delete_passenger(session, passenger_id)

"""A passenger's own view of bibo: live status, everything stored about them, and erasure.

Also registration: passengers, their devices (and their keys), and the bulk device import.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from backend import db, models
from backend.billing import repository as billing_repo
from backend.billing import service as billing_service
from backend.notifications import repository as notifications_repo
from backend.passengers import repository as passengers_repo
from backend.passengers.schemas import DeviceImportFile
from backend.phones import repository as phones_repo
from backend.phones import service as phones_service
from backend.security import new_api_token, new_id, new_secret, token_hash
from backend.tickets import service as tickets_service


@dataclass(frozen=True)
class NewPassenger:
    passenger_id: str
    token: str


def register_passenger(session: Session, rider_category: str) -> NewPassenger:
    passenger = NewPassenger(passenger_id=new_id("pas"), token=new_api_token("pt"))
    passengers_repo.add_passenger(
        session, passenger.passenger_id, rider_category, token_hash(passenger.token)
    )
    return passenger


@dataclass(frozen=True)
class NewDevice:
    device_id: str
    device_key_b64: str


def register_device(session: Session, passenger_id: str) -> NewDevice:
    key = new_secret()
    device_id = new_id("dev")
    passengers_repo.add_device(session, device_id, passenger_id, key)
    return NewDevice(device_id=device_id, device_key_b64=base64.b64encode(key).decode("ascii"))


def import_devices(session: Session, doc: DeviceImportFile) -> tuple[int, int]:
    """Create the passengers and devices of ``doc``; returns (created, already present).

    Re-importing the same file changes nothing; a known device id with another key is
    refused (``AlreadyExistsError``). Imported passengers get no usable API token.
    """
    known = {device_id: key for device_id, key, _ in passengers_repo.all_devices(session)}
    known_passengers = set(
        passengers_repo.passenger_categories(session, sorted({d.passenger_id for d in doc.devices}))
    )
    present = 0
    new: list[tuple[str, str, bytes]] = []
    for d in doc.devices:
        key = base64.b64decode(d.device_key)
        if d.device_id in known:
            if known[d.device_id] != key:
                raise db.AlreadyExistsError(f"device {d.device_id!r} exists with another key")
            present += 1
            continue
        if d.passenger_id not in known_passengers:
            passengers_repo.add_passenger(
                session, d.passenger_id, d.rider_category, token_hash(new_api_token("pt"))
            )
            known_passengers.add(d.passenger_id)
        new.append((d.device_id, d.passenger_id, key))
        known[d.device_id] = key
    passengers_repo.add_devices(session, new)
    return len(new), present


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
    trips = billing_service.effective_trips(
        session, passenger_id, today - dt.timedelta(days=1), today
    )
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
    Version 2 added what the passenger's phones uploaded (docs/contracts.md, Trip export).
    """
    passenger = passengers_repo.passenger(session, passenger_id)
    if passenger is None:
        raise KeyError(passenger_id)
    devices = passengers_repo.devices(session, passenger_id)
    trips = passengers_repo.trips(session, passenger_id)
    disputes = passengers_repo.passenger_disputes(session, passenger_id)
    invoices = billing_repo.passenger_invoices(session, passenger_id)
    corrections = billing_repo.latest_corrections(session, [t.trip_id for t in trips])
    return {
        "version": 2,
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
                "billed": not t.conflict_lost
                and not (t.trip_id in corrections and corrections[t.trip_id].cancelled),
                "correction": _correction(corrections.get(t.trip_id)),
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
            for e in billing_repo.ledger_entries(session, passenger_id)
        ],
    } | phones_service.passenger_export(session, passenger_id)


def _correction(fix: models.TripCorrection | None) -> dict[str, Any] | None:
    """The newest correction of an exported trip: what billing uses instead of the trip."""
    if fix is None:
        return None
    return {
        "cancelled": fix.cancelled,
        "board_stop_id": fix.board_stop_id,
        "alight_stop_id": fix.alight_stop_id,
        "board_time": fix.board_time,
        "alight_time": fix.alight_time,
        "stops_travelled": fix.stops_travelled,
        "reason": fix.reason,
        "created_at": fix.created_at.isoformat(),
    }


def delete_account(session: Session, passenger_id: str) -> None:
    """Erase the passenger's personal data; the ledger stays, pseudonymised.

    The passenger row, devices (keys: old tokens can no longer be linked to anyone), what
    their phones uploaded, trips, disputes and corrections go. Ledger entries stay, as
    §147 AO requires, under the random passenger id that now names nobody; invoices keep
    only their totals.
    """
    phones_repo.delete_passenger_phone_data(session, passenger_id)  # before the devices
    notifications_repo.delete_passenger_rows(session, passenger_id)
    tickets_service.revoke_account(session, passenger_id)
    passengers_repo.delete_personal_rows(session, passenger_id)
    redacted = {
        invoice.invoice_id: {
            "version": 1,
            "passenger_id": passenger_id,
            "month": invoice.month,
            "total_cents": invoice.total_cents,
            "redacted": "account deleted: trips and products removed",
        }
        for invoice in billing_repo.passenger_invoices(session, passenger_id)
    }
    billing_repo.set_invoice_documents(
        session, {i: json.dumps(doc, sort_keys=True) for i, doc in redacted.items()}
    )
    passengers_repo.delete_passenger(session, passenger_id)

"""Billing: each passenger's best price per month, posted to the append-only ledger.

The charge for a month is always the fare engine's exact best price over the passenger's
*effective* trips of the month (reconciled, conflicts removed, operator corrections applied)
on the service days that have ended. Re-billing compares it with what the ledger holds and,
if anything changed, reverses the live charge and posts a new one: the ledger balance of a
month then equals its best price, however often and in whatever order billing ran.

Also what the passenger and operator APIs ask of billing: a service day's charges
(``day_charges``), a month's running balance (``month_balance``) and a passenger's invoices.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

import fare_engine
from backend import models
from backend.billing import repository as billing_repo
from backend.const import (
    DAY_CLOSE_GRACE,
)
from backend.maintenance import repository as maintenance_repo
from backend.passengers import repository as passengers_repo
from backend.timeutil import service_day_bounds, service_day_of

log = logging.getLogger(__name__)

INVOICE_VERSION = 1


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_days(month: str) -> tuple[dt.date, dt.date]:
    """First and last service day of a month ``YYYY-MM``."""
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"month: expected YYYY-MM, got {month!r}") from None
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def last_closed_day(now: dt.datetime) -> dt.date:
    """The newest service day that ended at least ``DAY_CLOSE_GRACE`` ago (late uploads)."""
    now_ms = int(now.timestamp() * 1000)
    grace_ms = int(DAY_CLOSE_GRACE.total_seconds() * 1000)
    day = service_day_of(now_ms)
    while service_day_bounds(day)[1] + grace_ms > now_ms:
        day -= dt.timedelta(days=1)
    return day


@dataclass(frozen=True)
class EffectiveTrip:
    """A trip as billed: reconciled, with the newest operator correction applied."""

    trip_id: str
    service_day: dt.date
    device_id: str
    passenger_id: str
    vehicle_id: str
    journey_id: str
    line: str
    board_stop_id: str
    board_time: int
    alight_stop_id: str
    alight_time: int
    confidence: float
    status: str
    chain_id: str | None
    stops_travelled: int | None
    corrected: bool

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["service_day"] = self.service_day.isoformat()
        return out


def effective_trips(
    session: Session, passenger_id: str, first_day: dt.date, last_day: dt.date
) -> list[EffectiveTrip]:
    """A passenger's billable trips in ``[first_day, last_day]``, in boarding order."""
    rows = billing_repo.passenger_trips(session, passenger_id, first_day, last_day)
    corrections = billing_repo.latest_corrections(session, [r.trip_id for r in rows])
    trips = []
    for r in rows:
        fix = corrections.get(r.trip_id)
        if fix is not None and fix.cancelled:
            continue
        board = (fix.board_stop_id if fix else None) or r.board_stop_id
        alight = (fix.alight_stop_id if fix else None) or r.alight_stop_id
        changed = fix is not None and (board, alight) != (r.board_stop_id, r.alight_stop_id)
        trips.append(
            EffectiveTrip(
                trip_id=r.trip_id,
                service_day=r.service_day,
                device_id=r.device_id,
                passenger_id=r.passenger_id,
                vehicle_id=r.vehicle_id,
                journey_id=r.journey_id,
                line=r.line,
                board_stop_id=board,
                board_time=r.board_time,
                alight_stop_id=alight,
                alight_time=r.alight_time,
                confidence=r.confidence,
                status=r.status,
                chain_id=r.chain_id,
                # A corrected stop invalidates the counted stops (Kurzstrecke): drop it.
                stops_travelled=None if changed else r.stops_travelled,
                corrected=fix is not None,
            )
        )
    return trips


def price(trips: Sequence[EffectiveTrip], rider_category: str) -> fare_engine.Bill:
    """The best price of these trips over bibo's tariffs (Ruhr-Lippe, eezy, D-Ticket)."""
    return fare_engine.best_price_multi(
        [
            fare_engine.Trip(
                board_stop_id=t.board_stop_id,
                alight_stop_id=t.alight_stop_id,
                board_time=t.board_time,
                alight_time=t.alight_time,
                rider_category=rider_category,
                stops_travelled=t.stops_travelled,
            )
            for t in trips
        ]
    )


def trips_fingerprint(trips: Sequence[EffectiveTrip]) -> str:
    key = "\n".join(
        f"{t.trip_id}|{t.board_stop_id}|{t.alight_stop_id}|{t.board_time}|{t.alight_time}"
        for t in sorted(trips, key=lambda t: t.trip_id)
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _charge_explanation(bill: fare_engine.Bill, fingerprint: str) -> str:
    """What the ledger keeps of a bill: products and money, no stops (the ledger outlives
    the account; trip details stay with the passenger's data)."""
    return json.dumps(
        {
            "version": 1,
            "trips_fingerprint": fingerprint,
            "total_cents": bill.total_cents,
            "singles_total_cents": bill.singles_total_cents,
            "products": [
                {
                    "product": p.product,
                    "name": p.name,
                    "price_cents": p.price_cents,
                    "valid_from": p.valid_from,
                    "valid_to": p.valid_to,
                    "trips": len(p.covers),
                }
                for p in bill.products
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class RebillResult:
    passenger_id: str
    month: str
    total_cents: int
    changed: bool


def month_is_final(session: Session, month: str) -> bool:
    """Whether retention has deleted trips of ``month``: it can never be re-billed."""
    mark = maintenance_repo.purged_before(session, maintenance_repo.TRIPS_MARK)
    return mark is not None and month_days(month)[0] < mark


def rebill(
    session: Session, passenger_id: str, month: str, through_day: dt.date, now: dt.datetime
) -> RebillResult:
    """Make the ledger hold the month's best price over the trips up to ``through_day``."""
    category = passengers_repo.passenger_category(session, passenger_id)
    if category is None:
        # A deleted account: its ledger stays as it is (pseudonymised), never re-billed.
        return RebillResult(passenger_id, month, 0, changed=False)
    first, last = month_days(month)
    live = billing_repo.live_charges(session, passenger_id, month)
    if month_is_final(session, month):
        # Its trips are gone (retention): what the ledger holds is final.
        return RebillResult(passenger_id, month, sum(e.amount_cents for e in live), False)
    trips = effective_trips(session, passenger_id, first, min(last, through_day))
    fingerprint = trips_fingerprint(trips)
    if len(live) == (1 if trips else 0) and all(
        json.loads(e.explanation)["trips_fingerprint"] == fingerprint for e in live
    ):
        # Same trips, same price: the fare engine is exact and deterministic.
        total = live[0].amount_cents if live else 0
        return RebillResult(passenger_id, month, total, changed=False)
    bill = price(trips, category) if trips else None
    total = bill.total_cents if bill else 0
    for entry in live:
        billing_repo.post_ledger_entry(
            session,
            passenger_id,
            month,
            "reversal",
            -entry.amount_cents,
            json.dumps({"version": 1, "reason": "trips changed; re-billed"}),
            now,
            reverses=entry.entry_id,
        )
    if bill is not None:
        billing_repo.post_ledger_entry(
            session,
            passenger_id,
            month,
            "charge",
            total,
            _charge_explanation(bill, fingerprint),
            now,
        )
    return RebillResult(passenger_id, month, total, changed=True)


def rebill_closed_days(session: Session, now: dt.datetime) -> list[RebillResult]:
    """Bring the ledger up to date for every passenger with trips in this month or the last,
    over the service days that have ended."""
    through = last_closed_day(now)
    months = sorted({month_of(through), month_of(through.replace(day=1) - dt.timedelta(days=1))})
    results = []
    for month in months:
        first, last = month_days(month)
        for passenger_id in billing_repo.passengers_with_trips(session, first, min(last, through)):
            results.append(rebill(session, passenger_id, month, through, now))
    return results


def invoice_document(session: Session, passenger_id: str, month: str) -> tuple[int, dict[str, Any]]:
    """The invoice of a closed month: the full bill with its trips (deterministic JSON)."""
    first, last = month_days(month)
    trips = effective_trips(session, passenger_id, first, last)
    category = passengers_repo.passenger_category(session, passenger_id)
    bill = price(trips, category) if trips and category else None
    balance = billing_repo.ledger_balance(session, passenger_id, month)
    return balance, {
        "version": INVOICE_VERSION,
        "passenger_id": passenger_id,
        "month": month,
        "rider_category": category,
        "total_cents": balance,
        "singles_total_cents": bill.singles_total_cents if bill else 0,
        "saving_cents": (bill.singles_total_cents - balance) if bill else 0,
        "bill": json.loads(bill.to_json()) if bill else None,
        "trips": [t.as_dict() for t in trips],
    }


def close_month(session: Session, month: str, now: dt.datetime) -> list[models.Invoice]:
    """Final billing of a month: re-bill every passenger, then issue invoices.

    Idempotent: running it again issues nothing new unless a correction changed a bill,
    in which case the passenger gets the next invoice version.
    """
    first, last = month_days(month)
    if service_day_bounds(last)[1] > now.timestamp() * 1000:
        raise ValueError(f"month {month} has not ended yet")
    if month_is_final(session, month):
        raise ValueError(
            f"month {month} is final: retention deleted trips of it, so it cannot be billed again"
        )
    issued = []
    passengers = set(billing_repo.passengers_with_trips(session, first, last))
    passengers |= set(billing_repo.passengers_with_ledger(session, month))
    for passenger_id in sorted(passengers):
        invoice = close_month_for(session, passenger_id, month, now)
        if invoice is not None:
            issued.append(invoice)
    return issued


def close_month_for(
    session: Session, passenger_id: str, month: str, now: dt.datetime
) -> models.Invoice | None:
    """Re-bill one passenger's ended month and issue an invoice if it is new or changed."""
    if passengers_repo.passenger_category(session, passenger_id) is None:
        return None  # deleted account: its invoices were issued before, nothing new
    _, last = month_days(month)
    result = rebill(session, passenger_id, month, last, now)
    latest = billing_repo.latest_invoice(session, passenger_id, month)
    if latest is not None and not result.changed:
        return None  # nothing changed since the invoice was issued
    total, document = invoice_document(session, passenger_id, month)
    text = json.dumps(document, sort_keys=True)
    if latest is not None and latest.document == text:
        return None
    version = (latest.version + 1) if latest else 1
    return billing_repo.add_invoice(session, passenger_id, month, version, total, text, now)


@dataclass(frozen=True)
class PassengerCharge:
    """What a service day adds to a passenger's month (cents), or why it could not be
    priced (``error``)."""

    passenger_id: str
    trips: int
    total_cents: int | None
    singles_total_cents: int | None
    error: str | None = None


def day_charges(session: Session, day: dt.date) -> list[PassengerCharge]:
    """Each passenger's charge for one service day: the month's best price through that day
    minus the month's best price through the day before. A pass bought earlier in the month
    (a 30TageTicket, the Deutschlandticket) makes later days cost nothing; the charges of a
    month add up to its best price."""
    month = month_of(day)
    first, _ = month_days(month)
    charges = []
    for pid in billing_repo.passengers_with_trips(session, day, day):
        category = passengers_repo.passenger_category(session, pid)
        through = effective_trips(session, pid, first, day)
        today = [t for t in through if t.service_day == day]
        before = [t for t in through if t.service_day < day]
        if category is None or not today:
            continue
        try:
            after_bill = price(through, category)
            before_bill = price(before, category) if before else None
        except fare_engine.FareInputError as exc:
            # One unpriceable passenger (a stop the tariff lacks) must not hide the others.
            log.warning("cannot price %s on %s: %s", pid, day, exc)
            charges.append(PassengerCharge(pid, len(today), None, None, str(exc)))
            continue
        charges.append(
            PassengerCharge(
                pid,
                len(today),
                after_bill.total_cents - (before_bill.total_cents if before_bill else 0),
                after_bill.singles_total_cents
                - (before_bill.singles_total_cents if before_bill else 0),
            )
        )
    return charges


@dataclass(frozen=True, slots=True)
class MonthBalance:
    """A passenger's month so far: its best price (today included) beside the ledger."""

    month: str
    total_cents: int
    singles_total_cents: int
    saving_cents: int
    billed_cents: int
    trips: int
    explanation: str


def month_balance(
    session: Session, passenger_id: str, rider_category: str, month: str
) -> MonthBalance:
    first, last = month_days(month)
    trips = effective_trips(session, passenger_id, first, last)
    bill = price(trips, rider_category) if trips else None
    return MonthBalance(
        month=month,
        total_cents=bill.total_cents if bill else 0,
        singles_total_cents=bill.singles_total_cents if bill else 0,
        saving_cents=bill.saving_cents if bill else 0,
        billed_cents=billing_repo.ledger_balance(session, passenger_id, month),
        trips=len(trips),
        explanation=bill.to_text() if bill else "No trips this month.",
    )


def passenger_invoices(session: Session, passenger_id: str) -> list[models.Invoice]:
    """Every version of every invoice of the passenger, by month and version."""
    return billing_repo.passenger_invoices(session, passenger_id)


def own_invoice(session: Session, passenger_id: str, invoice_id: int) -> models.Invoice | None:
    """The invoice if it is the passenger's (None for another's: ids are not probeable)."""
    invoice = billing_repo.invoice(session, invoice_id)
    return invoice if invoice is not None and invoice.passenger_id == passenger_id else None

"""Billing: each passenger's best price, posted month by month to the append-only ledger.

**The rule.** Products follow their own validity (a calendar month by the local calendar,
24 h from first use, 7 or 30 days from the chosen start), so a month's bill cannot be
priced alone: a 30TageTicket from 28 January pays for February's rides too. Trips belong
to the local calendar month (Europe/Berlin) in which they board, never to a service day.
A passenger's trips fall into *chains*: consecutive trips boarding less than the tariffs'
longest validity apart (``fare_engine.longest_validity_ms``, a calendar month and a DST
hour) belong to one chain, and no product spans two chains. The charge of month M is

    best(chain trips boarding before the end of M) − best(chain trips boarding before M)

where ``best`` is the fare engine's exact best price. Summed over consecutive months this
telescopes: what a passenger has been charged through any month is exactly the best price
of all their trips through it, as if one bill covered them all, and no posted month is
rewritten to get there (a later month pays the difference). Adding later trips never
lowers a best price (the engine's covers are hereditary), so no month's charge is negative.
Exact while the chain's earlier trips are kept (trips retention, 365 days by default).

Re-billing compares the month's charge with what the ledger holds and, if anything
changed, reverses the live charge and posts a new one: the ledger balance of a month then
equals its charge, however often and in whatever order billing ran.

Also what the passenger and operator APIs ask of billing: a service day's charges
(``day_charges``), a month's running balance (``month_balance``) and a passenger's invoices.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

import fare_engine
from backend import models
from backend.billing import apportionment, presentation
from backend.billing import repository as billing_repo
from backend.const import DAY_CLOSE_GRACE, SERVICE_DAY_TZ
from backend.maintenance import repository as maintenance_repo
from backend.passengers import repository as passengers_repo
from backend.timeutil import service_day_bounds, service_day_of

log = logging.getLogger(__name__)

INVOICE_VERSION = 2
"""2: the bill of the month's chain (products covering this month's trips, the credit for
what earlier months already paid)."""

_TZ = ZoneInfo(SERVICE_DAY_TZ)
"""Bills follow the tariffs' local calendar (the WestfalenTarif and eezy are in Berlin)."""


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_of_ms(t_ms: int) -> str:
    """The local calendar month (``YYYY-MM``) of an instant: the month a boarding is billed in."""
    return month_of(local_date(t_ms))


def local_date(t_ms: int) -> dt.date:
    """The local calendar date of an instant (what months and a ticket's validity days count)."""
    return dt.datetime.fromtimestamp(t_ms / 1000, tz=_TZ).date()


def month_days(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of a month ``YYYY-MM``."""
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ValueError(f"month: expected YYYY-MM, got {month!r}") from None
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def month_bounds(month: str) -> tuple[int, int]:
    """``[start, end)`` of a local calendar month in UTC epoch ms (midnight to midnight)."""
    first, last = month_days(month)
    start = dt.datetime.combine(first, dt.time(), tzinfo=_TZ)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=_TZ)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


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
    party: tuple[tuple[str, int], ...] = ()
    """Who rode along, by category (``adult``, ``child``, ``infant``, ``bike``) and count."""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["service_day"] = self.service_day.isoformat()
        out["party"] = dict(self.party)
        return out


def _effective(session: Session, rows: Sequence[models.Trip]) -> list[EffectiveTrip]:
    corrections = billing_repo.latest_corrections(session, [r.trip_id for r in rows])
    parties = passengers_repo.companions_of(session, [r.trip_id for r in rows])
    trips = []
    for r in rows:
        fix = corrections.get(r.trip_id)
        if fix is not None and fix.cancelled:
            continue
        board = (fix.board_stop_id if fix else None) or r.board_stop_id
        alight = (fix.alight_stop_id if fix else None) or r.alight_stop_id
        board_time, alight_time, stops_travelled = r.board_time, r.alight_time, r.stops_travelled
        if fix is not None and (board, alight) != (r.board_stop_id, r.alight_stop_id):
            # The correction re-derived the ride from the journey's stop events; where they
            # were gone (retention) the times stay and the counted stops are unknown.
            stops_travelled = fix.stops_travelled
            board_time = fix.board_time if fix.board_time is not None else board_time
            alight_time = fix.alight_time if fix.alight_time is not None else alight_time
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
                board_time=board_time,
                alight_stop_id=alight,
                alight_time=alight_time,
                confidence=r.confidence,
                status=r.status,
                chain_id=r.chain_id,
                stops_travelled=stops_travelled,
                corrected=fix is not None,
                party=tuple(sorted(parties.get(r.trip_id, {}).items())),
            )
        )
    trips.sort(key=lambda t: (t.board_time, t.trip_id))  # a correction may move a boarding
    return trips


def effective_trips(
    session: Session, passenger_id: str, first_day: dt.date, last_day: dt.date
) -> list[EffectiveTrip]:
    """A passenger's billable trips of the service days ``[first_day, last_day]``, in
    boarding order."""
    rows = billing_repo.passenger_trips(session, passenger_id, first_day, last_day)
    return _effective(session, rows)


def trips_boarding(
    session: Session, passenger_id: str, before_ms: int, since_ms: int | None = None
) -> list[EffectiveTrip]:
    """A passenger's billable trips boarding in ``[since_ms, before_ms)``, in boarding order
    (from the oldest kept trip when ``since_ms`` is None)."""
    rows = billing_repo.passenger_trips_boarding(session, passenger_id, before_ms, since_ms)
    return _effective(session, rows)


def fare_trips(trips: Sequence[EffectiveTrip], rider_category: str) -> list[fare_engine.Trip]:
    """The fare engine's view of billed trips (in boarding order). A trip continues the
    journey of the one before it (``joins_previous``: one eezy check-in across the change)
    when reconciliation put both in one transfer chain; its ``party`` is who rode along."""
    return [
        fare_engine.Trip(
            board_stop_id=t.board_stop_id,
            alight_stop_id=t.alight_stop_id,
            board_time=t.board_time,
            alight_time=t.alight_time,
            rider_category=rider_category,
            stops_travelled=t.stops_travelled,
            joins_previous=k > 0 and t.chain_id is not None and t.chain_id == trips[k - 1].chain_id,
            party=t.party or None,
        )
        for k, t in enumerate(trips)
    ]


def price(trips: Sequence[EffectiveTrip], rider_category: str) -> fare_engine.Bill:
    """The best price of these trips over bibo's tariffs (Ruhr-Lippe, eezy, D-Ticket)."""
    return fare_engine.best_price_multi(fare_trips(trips, rider_category))


@functools.cache
def horizon_ms() -> int:
    """Trips boarding at least this far apart never share a product (see the module doc)."""
    return fare_engine.longest_validity_ms(fare_engine.default_tariffs())


def _continues(previous: EffectiveTrip, trip: EffectiveTrip) -> bool:
    """Does ``trip`` continue ``previous``'s chain (a product may pay for both)? Rides of
    one transfer chain (an eezy check-in) board minutes apart, well inside the horizon."""
    return trip.board_time - previous.board_time < horizon_ms()


def chain_start(trips: Sequence[EffectiveTrip], k: int) -> int:
    """The first trip of the chain that trip ``k`` of ``trips`` (boarding order) is in."""
    while k > 0 and _continues(trips[k - 1], trips[k]):
        k -= 1
    return k


def trips_fingerprint(trips: Sequence[EffectiveTrip], rider_category: str = "") -> str:
    key = "\n".join(
        f"{t.trip_id}|{t.board_stop_id}|{t.alight_stop_id}|{t.board_time}|{t.alight_time}"
        f"|{t.stops_travelled}|{t.chain_id}|{t.party}"
        for t in sorted(trips, key=lambda t: t.trip_id)
    )
    return hashlib.sha256(f"{rider_category}\n{key}".encode()).hexdigest()


APPLIED_ENTITLEMENTS = ("pending", "verified")
"""Entitlement statuses that make trips free: bibo trusts a registered ticket, as an
inspector trusts one shown, until an operator revokes it (and the months it touched are
re-billed)."""


@functools.cache
def _zone_tariff() -> fare_engine.Tariff:
    return fare_engine.default_tariffs()[0]


def tarifgebiete() -> frozenset[str]:
    """The Tarifgebiet codes an entitlement's scope may name."""
    return frozenset(area.code for area in _zone_tariff().spec.areas)


def tarifgebiet_of(stop_id: str) -> str | None:
    """The Tarifgebiet code of a stop (None for a stop the tariff does not know)."""
    tariff = _zone_tariff()
    return tariff.area_of_stop(stop_id).code if tariff.has_stop(stop_id) else None


@dataclass(frozen=True, slots=True)
class Coverage:
    """An entitlement (a ticket held elsewhere) as billing applies it: every trip boarding
    on one of its days, from and to stops in its Tarifgebiete (anywhere for None), is free."""

    entitlement_id: int
    kind: str
    first_day: dt.date
    last_day: dt.date
    areas: frozenset[str] | None

    def covers(self, trip: EffectiveTrip) -> bool:
        if not self.first_day <= local_date(trip.board_time) <= self.last_day:
            return False
        if self.areas is None:
            return True
        board, alight = tarifgebiet_of(trip.board_stop_id), tarifgebiet_of(trip.alight_stop_id)
        return board in self.areas and alight in self.areas

    @property
    def key(self) -> str:
        areas = ",".join(sorted(self.areas)) if self.areas is not None else "*"
        return f"{self.entitlement_id}:{self.kind}:{self.first_day}:{self.last_day}:{areas}"


ELIGIBILITIES: dict[str, str] = {
    "sozial_eligibility": "adult_sozial",
    "job_eligibility": "adult_job",
}
"""Entitlement kinds that prove eligibility for a reduced Deutschlandticket (a Bürgergeld or
Sozialhilfe notice; an employer's Deutschlandticket Job offer), and the tariff's rider
category each makes an adult: that category may buy the Deutschlandticket Sozial or Job and
buys everything else as an adult. They make no trip free. In the order tried: the first
that applies decides (Sozial is the cheaper)."""


@dataclass(frozen=True, slots=True)
class Held:
    """What the passenger's applied entitlements mean for billing: trips made free, and the
    eligibilities (kind, first and last day)."""

    coverages: list[Coverage]
    eligibilities: list[tuple[str, dt.date, dt.date]]

    def category_on(self, rider_category: str, day: dt.date) -> str:
        """The rider category a period starting on ``day`` is priced with: an adult with an
        eligibility valid that day (a month's 1st, when a calendar-month ticket starts) is
        priced as the category it grants; everyone else as registered."""
        if rider_category != "adult":
            return rider_category
        for kind, category in ELIGIBILITIES.items():
            if any(k == kind and first <= day <= last for k, first, last in self.eligibilities):
                return category
        return rider_category


def held_entitlements(session: Session, passenger_id: str) -> Held:
    """The passenger's entitlements that apply (registered or verified, not revoked)."""
    applied = [
        e
        for e in passengers_repo.passenger_entitlements(session, passenger_id)
        if e.status in APPLIED_ENTITLEMENTS
    ]
    return Held(
        [
            Coverage(
                e.entitlement_id,
                e.kind,
                e.valid_from,
                e.valid_to,
                frozenset(e.scope_areas.split(",")) if e.scope_areas else None,
            )
            for e in applied
            if e.kind not in ELIGIBILITIES
        ],
        [(e.kind, e.valid_from, e.valid_to) for e in applied if e.kind in ELIGIBILITIES],
    )


@dataclass(frozen=True)
class ChainPrice:
    """The price of some trips given the earlier trips of their chain (see the module doc).

    ``trips`` are the trips charged (a month's, a day's), ``earlier`` the trips before them
    that a product may pay for together with them. ``bill`` prices ``earlier + trips``
    (product ``covers`` index that list), ``earlier_bill`` prices ``earlier`` alone.
    """

    earlier: list[EffectiveTrip]
    trips: list[EffectiveTrip]
    bill: fare_engine.Bill | None
    earlier_bill: fare_engine.Bill | None
    fingerprint: str
    free: tuple[tuple[EffectiveTrip, Coverage], ...] = ()
    """Trips of the period an entitlement makes free (not in ``trips``), with it."""
    rider_category: str = ""
    """The rider category the trips were priced with (an eligibility may have changed it)."""

    @property
    def total_cents(self) -> int:
        """What these trips add to the chain's best price: their charge."""
        return _total(self.bill) - _total(self.earlier_bill)

    @property
    def singles_total_cents(self) -> int:
        """What single tickets would add for these trips (same telescoping)."""
        return _singles(self.bill) - _singles(self.earlier_bill)

    @property
    def earlier_only_cents(self) -> int:
        """Products of ``bill`` that pay only for earlier trips."""
        if self.bill is None:
            return 0
        n = len(self.earlier)
        return sum(p.price_cents for p in self.bill.products if max(p.covers) < n)

    @property
    def credit_cents(self) -> int:
        """What the earlier months paid towards the products of these trips: the earlier
        best price minus the products that pay only for earlier trips (never negative: the
        chain's best price could otherwise buy the earlier trips cheaper)."""
        return _total(self.earlier_bill) - self.earlier_only_cents


def _total(bill: fare_engine.Bill | None) -> int:
    return bill.total_cents if bill is not None else 0


def _singles(bill: fare_engine.Bill | None) -> int:
    return bill.singles_total_cents if bill is not None else 0


_LOOKBACK = 3
"""Horizons of earlier trips read at first; more only when the chain reaches further."""


def chain_price(
    session: Session, passenger_id: str, rider_category: str, since_ms: int, before_ms: int
) -> ChainPrice:
    """The charge of the passenger's trips boarding in ``[since_ms, before_ms)``, priced
    with the rider category their entitlements give them on the period's first day
    (``Held.category_on``)."""
    lookback = since_ms - _LOOKBACK * horizon_ms()
    rows = trips_boarding(session, passenger_id, before_ms, lookback)
    k = bisect.bisect_left(_boards(rows), since_ms)
    if k < len(rows) and chain_start(rows, k) == 0:
        # The chain may reach past what was read: read every kept trip.
        rows = trips_boarding(session, passenger_id, before_ms)
    held = held_entitlements(session, passenger_id)
    category = held.category_on(rider_category, local_date(since_ms))
    return price_between(rows, since_ms, category, held.coverages)


def _boards(trips: Sequence[EffectiveTrip]) -> list[int]:
    return [t.board_time for t in trips]


def price_between(
    trips: Sequence[EffectiveTrip],
    since_ms: int,
    rider_category: str,
    entitlements: Sequence[Coverage] = (),
) -> ChainPrice:
    """The charge of the trips boarding from ``since_ms`` on, given every earlier trip of
    the passenger in ``trips`` (boarding order; none boarding at or after the period's end):
    the best price of their chain with them minus the same without them.

    Trips an entitlement covers cost nothing and are left out of the pricing: that is
    exact, because every product stays valid with fewer trips (the engine's covers are
    hereditary), so the others' best price is the best price of all."""
    free: list[tuple[EffectiveTrip, Coverage]] = []
    if entitlements:
        kept = []
        for trip in trips:
            coverage = next((c for c in entitlements if c.covers(trip)), None)
            if coverage is None:
                kept.append(trip)
            elif trip.board_time >= since_ms:
                free.append((trip, coverage))
        trips = kept
    k = bisect.bisect_left(_boards(trips), since_ms)
    first = chain_start(trips, k) if k < len(trips) else k
    charged, earlier = list(trips[k:]), list(trips[first:k])
    held = "|".join(c.key for c in entitlements)
    fingerprint = trips_fingerprint(
        [*earlier, *charged, *(t for t, _ in free)], f"{rider_category}|{held}"
    )
    if not charged:
        return ChainPrice([], [], None, None, fingerprint, tuple(free), rider_category)
    bill = price([*earlier, *charged], rider_category)
    earlier_bill = price(earlier, rider_category) if earlier else None
    return ChainPrice(
        earlier, charged, bill, earlier_bill, fingerprint, tuple(free), rider_category
    )


def month_price(
    session: Session,
    passenger_id: str,
    rider_category: str,
    month: str,
    through_ms: int | None = None,
) -> ChainPrice:
    """The charge of a month's trips (those boarding before ``through_ms`` if given)."""
    start, end = month_bounds(month)
    return chain_price(
        session,
        passenger_id,
        rider_category,
        start,
        end if through_ms is None else min(end, through_ms),
    )


def _charge_explanation(priced: ChainPrice) -> str:
    """What the ledger keeps of a bill: products and money, no stops (the ledger outlives
    the account; trip details stay with the passenger's data)."""
    n = len(priced.earlier)
    products = priced.bill.products if priced.bill is not None else []
    return json.dumps(
        {
            "version": 2,
            "trips_fingerprint": priced.fingerprint,
            "total_cents": priced.total_cents,
            "singles_total_cents": priced.singles_total_cents,
            "earlier_trips": n,
            "credit_cents": priced.credit_cents,
            "products": [
                {
                    "product": p.product,
                    "name": p.name,
                    "price_cents": p.price_cents,
                    "valid_from": p.valid_from,
                    "valid_to": p.valid_to,
                    "trips": sum(1 for k in p.covers if k >= n),
                    "earlier_trips": sum(1 for k in p.covers if k < n),
                }
                for p in products
                if max(p.covers) >= n
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


def closed_through_ms(day: dt.date) -> int:
    """Trips boarding before this instant belong to service days up to ``day``."""
    return service_day_bounds(day)[1]


def rebill(
    session: Session, passenger_id: str, month: str, through_day: dt.date, now: dt.datetime
) -> RebillResult:
    """Make the ledger hold the month's charge over the trips of the service days up to
    ``through_day``."""
    category = passengers_repo.passenger_category(session, passenger_id)
    if category is None:
        # A deleted account: its ledger stays as it is (pseudonymised), never re-billed.
        return RebillResult(passenger_id, month, 0, changed=False)
    live = billing_repo.live_charges(session, passenger_id, month)
    if month_is_final(session, month):
        # Its trips are gone (retention): what the ledger holds is final.
        return RebillResult(passenger_id, month, sum(e.amount_cents for e in live), False)
    priced = month_price(session, passenger_id, category, month, closed_through_ms(through_day))
    if len(live) == (1 if priced.trips else 0) and all(
        json.loads(e.explanation)["trips_fingerprint"] == priced.fingerprint for e in live
    ):
        # Same trips, same price: the fare engine is exact and deterministic.
        total = live[0].amount_cents if live else 0
        return RebillResult(passenger_id, month, total, changed=False)
    total = priced.total_cents
    for entry in live:
        reversal = billing_repo.post_ledger_entry(
            session,
            passenger_id,
            month,
            "reversal",
            -entry.amount_cents,
            json.dumps({"version": 1, "reason": "trips changed; re-billed"}),
            now,
            reverses=entry.entry_id,
        )
        apportionment.record_reversal_shares(session, reversal, entry.entry_id)
    if priced.trips:
        charge = billing_repo.post_ledger_entry(
            session, passenger_id, month, "charge", total, _charge_explanation(priced), now
        )
        # Shared out to the companies whose vehicles carried the month's charged rides.
        apportionment.record_charge_shares(
            session,
            charge,
            [(t.vehicle_id, t.board_stop_id, t.alight_stop_id) for t in priced.trips],
        )
    return RebillResult(passenger_id, month, total, changed=True)


def rebill_from(
    session: Session, passenger_id: str, since_ms: int, now: dt.datetime
) -> list[tuple[str, int, models.Invoice | None]]:
    """Re-bill the month of ``since_ms`` and every later month billed so far (a month's
    charge depends on the earlier trips of its chain): after a correction, an entitlement
    registered or revoked. A month already invoiced gets its next invoice version. Returns
    (month, balance, new invoice or None) per month."""
    month = month_of_ms(since_ms)
    closed_through = last_closed_day(now)
    current = month_of_ms(closed_through_ms(closed_through) - 1)
    done = []
    while True:
        _, last = month_days(month)
        if closed_through >= last and billing_repo.latest_invoice(session, passenger_id, month):
            invoice = close_month_for(session, passenger_id, month, now)
            done.append((month, billing_repo.ledger_balance(session, passenger_id, month), invoice))
        else:
            result = rebill(session, passenger_id, month, min(last, closed_through), now)
            done.append((month, result.total_cents, None))
        if month >= current:
            return done
        month = month_of(last + dt.timedelta(days=1))


def _boarding_passengers(session: Session, since_ms: int, before_ms: int) -> list[str]:
    return billing_repo.passengers_boarding(
        session, since_ms, before_ms, service_day_of(since_ms), service_day_of(before_ms - 1)
    )


def months_to_bill(through_day: dt.date) -> list[str]:
    """The month holding the end of ``through_day`` and the one before it."""
    month = month_of_ms(closed_through_ms(through_day) - 1)
    first, _ = month_days(month)
    return [month_of(first - dt.timedelta(days=1)), month]


def rebill_closed_days(session: Session, now: dt.datetime) -> list[RebillResult]:
    """Bring the ledger up to date for every passenger with trips in this month or the last,
    over the service days that have ended."""
    through = last_closed_day(now)
    through_ms = closed_through_ms(through)
    results = []
    for month in months_to_bill(through):
        start, end = month_bounds(month)
        if start >= through_ms:
            continue
        for passenger_id in _boarding_passengers(session, start, min(end, through_ms)):
            results.append(rebill(session, passenger_id, month, through, now))
    return results


def _month_bill(priced: ChainPrice) -> dict[str, Any] | None:
    """The chain's bill as the month's invoice shows it: the products that pay for this
    month's trips, ``covers`` indexing the month's trips (``earlier_trips`` counts the
    earlier ones they also pay for)."""
    if priced.bill is None:
        return None
    n = len(priced.earlier)
    bill = json.loads(priced.bill.to_json())
    products = []
    for p in bill["products"]:
        mine = [k - n for k in p["covers"] if k >= n]
        if mine:
            products.append(p | {"covers": mine, "earlier_trips": len(p["covers"]) - len(mine)})
    bill["products"] = products
    bill["trips"] = [t | {"index": t["index"] - n} for t in bill["trips"] if t["index"] >= n]
    for t in bill["trips"]:
        t["covered_by"] = next(
            (i for i, p in enumerate(products) if t["index"] in p["covers"]), None
        )
    bill["total_cents"] = priced.total_cents
    bill["singles_total_cents"] = priced.singles_total_cents
    bill["saving_cents"] = priced.singles_total_cents - priced.total_cents
    return presentation.passenger_bill(bill)


def invoice_document(session: Session, passenger_id: str, month: str) -> tuple[int, dict[str, Any]]:
    """The invoice of a closed month: its trips, the products that pay for them and the
    credit for what earlier months of the chain already paid (deterministic JSON)."""
    category = passengers_repo.passenger_category(session, passenger_id)
    priced = (
        month_price(session, passenger_id, category, month)
        if category is not None
        else ChainPrice([], [], None, None, "")
    )
    balance = billing_repo.ledger_balance(session, passenger_id, month)
    earlier = priced.earlier
    return balance, {
        "version": INVOICE_VERSION,
        "passenger_id": passenger_id,
        "month": month,
        "rider_category": category,
        "priced_as": priced.rider_category or category,
        "total_cents": balance,
        "singles_total_cents": priced.singles_total_cents,
        "saving_cents": priced.singles_total_cents - balance if priced.trips else 0,
        "bill": _month_bill(priced),
        "earlier": {
            "trips": len(earlier),
            "since": earlier[0].board_time if earlier else None,
            "paid_cents": _total(priced.earlier_bill),
            "credit_cents": priced.credit_cents,
        },
        "trips": [t.as_dict() for t in priced.trips],
        "entitled": [
            t.as_dict()
            | {
                "entitlement_id": c.entitlement_id,
                "entitlement_kind": c.kind,
                "entitlement_label": presentation.ENTITLEMENT_LABELS.get(c.kind, c.kind),
            }
            for t, c in priced.free
        ],
        "cancelled": cancelled_trips(session, passenger_id, *month_bounds(month)),
    }


def cancelled_trips(
    session: Session, passenger_id: str, since_ms: int, before_ms: int
) -> list[dict[str, Any]]:
    """The passenger's trips boarding in ``[since_ms, before_ms)`` that a correction
    cancelled (not billed; the invoice lists them as such)."""
    rows = billing_repo.passenger_trips_boarding(session, passenger_id, before_ms, since_ms)
    fixes = billing_repo.latest_corrections(session, [r.trip_id for r in rows])
    return [
        {
            "trip_id": r.trip_id,
            "line": r.line,
            "board_stop_id": r.board_stop_id,
            "board_time": r.board_time,
            "alight_stop_id": r.alight_stop_id,
            "alight_time": r.alight_time,
        }
        for r in rows
        if (fix := fixes.get(r.trip_id)) is not None and fix.cancelled
    ]


def close_month(session: Session, month: str, now: dt.datetime) -> list[models.Invoice]:
    """Final billing of a month: re-bill every passenger, then issue invoices.

    Idempotent: running it again issues nothing new unless a correction changed a bill,
    in which case the passenger gets the next invoice version.
    """
    _, last = month_days(month)
    if service_day_bounds(last)[1] > now.timestamp() * 1000:
        raise ValueError(f"month {month} has not ended yet")
    if month_is_final(session, month):
        raise ValueError(
            f"month {month} is final: retention deleted trips of it, so it cannot be billed again"
        )
    issued = []
    passengers = set(_boarding_passengers(session, *month_bounds(month)))
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
    """What a service day adds to a passenger's bill (cents), or why it could not be
    priced (``error``)."""

    passenger_id: str
    trips: int
    total_cents: int | None
    singles_total_cents: int | None
    error: str | None = None


def day_charges(session: Session, day: dt.date) -> list[PassengerCharge]:
    """Each passenger's charge for one service day: the best price of their chain through
    that day minus the same through the day before (the rule of the module doc, by service
    day). A pass bought earlier (a 30TageTicket, the Deutschlandticket) makes later days
    cost nothing; the charges of consecutive days add up to the chain's best price."""
    since, before = service_day_bounds(day)
    charges = []
    for pid in billing_repo.passengers_with_trips(session, day, day):
        category = passengers_repo.passenger_category(session, pid)
        if category is None:
            continue
        try:
            priced = chain_price(session, pid, category, since, before)
        except fare_engine.FareInputError as exc:
            # One unpriceable passenger (a stop the tariff lacks) must not hide the others.
            log.warning("cannot price %s on %s: %s", pid, day, exc)
            n = len(trips_boarding(session, pid, before, since))
            charges.append(PassengerCharge(pid, n, None, None, str(exc)))
            continue
        if not priced.trips:
            continue
        charges.append(
            PassengerCharge(pid, len(priced.trips), priced.total_cents, priced.singles_total_cents)
        )
    return charges


@dataclass(frozen=True, slots=True)
class MonthBalance:
    """A passenger's month so far: its charge (today included) beside the ledger."""

    month: str
    total_cents: int
    singles_total_cents: int
    saving_cents: int
    billed_cents: int
    trips: int
    explanation: str


def month_balance(
    session: Session,
    passenger_id: str,
    rider_category: str,
    month: str,
    lang: presentation.Lang = "de",
) -> MonthBalance:
    """The month so far (today included), explained in ``lang``."""
    priced = month_price(session, passenger_id, rider_category, month)
    free: dict[str, int] = {}
    for _, coverage in priced.free:
        free[coverage.kind] = free.get(coverage.kind, 0) + 1
    earlier = None
    if priced.earlier:
        earlier = (len(priced.earlier), _total(priced.earlier_bill), priced.total_cents)
    return MonthBalance(
        month=month,
        total_cents=priced.total_cents,
        singles_total_cents=priced.singles_total_cents,
        saving_cents=priced.singles_total_cents - priced.total_cents,
        billed_cents=billing_repo.ledger_balance(session, passenger_id, month),
        trips=len(priced.trips),
        explanation=presentation.explain(_month_bill(priced), lang, free=free, earlier=earlier),
    )


def passenger_invoices(session: Session, passenger_id: str) -> list[models.Invoice]:
    """Every version of every invoice of the passenger, by month and version."""
    return billing_repo.passenger_invoices(session, passenger_id)


def own_invoice(session: Session, passenger_id: str, invoice_id: int) -> models.Invoice | None:
    """The invoice if it is the passenger's (None for another's: ids are not probeable)."""
    invoice = billing_repo.invoice(session, invoice_id)
    return invoice if invoice is not None and invoice.passenger_id == passenger_id else None

"""Revenue apportionment (Einnahmeaufteilung): every ledger entry split, to the cent, to the
transit companies whose vehicles carried the rides it pays for.

**Who carried a ride.** A charge pays for a passenger's rides of one billing month, each
``(vehicle_id, board_stop_id, alight_stop_id)``. A ride belongs to the company of its vehicle
(``vehicles.company``, set by ``bibo vehicles add --operator`` or ``set-operator``) as it is
when the entry is posted; a vehicle without one gives ``unassigned``. Changing a vehicle's
company does not move shares already written: the ledger and its shares are append-only.

**Weights** (``BIBO_REVENUE_SPLIT_RULE``, ``backend/settings.py``):

* ``passenger_km`` (the default): a ride weighs its passenger-km, the straight-line distance
  between its boarding and alighting stops (the tariff's stop coordinates,
  ``fare_engine.geo.distance_m``), but at least ``MIN_RIDE_KM`` (0.1 km), so a ride that
  boarded and alighted at the same stop (or at a stop the tariff lacks) still weighs;
* ``rides``: every ride weighs 1.

A company's weight is the sum over its rides (``math.fsum``: the same whatever the order of
the rides). Whatever the rule, a share also records the company's passenger-km.

**Rounding** (``split_cents``): largest remainder (Hare). Each company first gets the whole
cents of its exact share ``total × weight / Σ weights``; the cents left over (fewer than the
number of companies) go one each to the largest fractional remainders, ties to the lower
index (companies are in sorted order, so ties go alphabetically). The parts add up to the
total exactly and each is within one cent of its exact share. The arithmetic is exact
(``fractions.Fraction`` of the float weights), so the split is deterministic. A negative
total is split as the negation of the positive split; all-zero weights split equally.

**Reversals** get the negated shares (cents and passenger-km) of the charge they reverse, so
a reversal and its charge cancel company by company, and a month's shares sum to the
passenger-km of its live charges.

**Zero charges** (rides a pass bought earlier already pays for) get shares of 0 cents, so
the report's passenger-km counts every ride a company carried.

**The report** (``revenue_report``) sums a month's shares per company. Ledger entries without
shares (posted before apportionment existed, or the reversal of such an entry) are reported
as the company ``unapportioned``, so the sum over companies always equals the ledger's sum
for the month; ``RevenueReport.balanced`` checks it against the ledger itself.

Billing writes the shares right after posting each entry (``backend/billing/service.py``,
``rebill``): ``record_charge_shares`` for a charge, ``record_reversal_shares`` for a reversal.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, get_args

from sqlalchemy.orm import Session

import fare_engine
from backend import models
from backend.billing import repository as billing_repo
from backend.settings import RevenueSplitRule
from fare_engine.geo import distance_m

log = logging.getLogger(__name__)

UNASSIGNED: Final = "unassigned"
"""The company of rides on a vehicle that has none (lower case: no company code is)."""
UNAPPORTIONED: Final = "unapportioned"
"""The report's company for ledger entries without shares (posted before apportionment)."""
MIN_RIDE_KM: Final = 0.1
"""The least passenger-km a ride weighs (a same-stop ride, a stop without coordinates)."""
STOPS_TARIFF: Final = "ruhr_lippe_2026"
"""The tariff whose stop coordinates give the rides' distances."""
SPLIT_RULES: Final[tuple[str, ...]] = get_args(RevenueSplitRule)
DEFAULT_SPLIT_RULE: Final[RevenueSplitRule] = "passenger_km"

Ride = tuple[str, str, str]
"""``(vehicle_id, board_stop_id, alight_stop_id)``: a ride a ledger entry pays for."""

_MONTH = re.compile(r"(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])")


# --- pure functions -------------------------------------------------------------------------


def _exact_weight(weight: float) -> Fraction:
    try:
        exact = Fraction(weight)
    except (ValueError, OverflowError, TypeError):
        raise ValueError(f"weight {weight!r}: expected a finite number") from None
    if exact < 0:
        raise ValueError(f"weight {weight!r}: expected zero or more")
    return exact


def split_cents(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` cents in parts proportional to ``weights``, by largest remainder (Hare).

    The parts add up to ``total`` exactly, each within one cent of its exact share; leftover
    cents go to the largest remainders, ties to the lower index. A negative ``total`` is the
    negation of the split of ``-total``. All-zero weights split equally; no weights split
    0 into no parts (and refuse any other total). ValueError for a negative, infinite or NaN
    weight.
    """
    total = operator.index(total)  # whole cents: an int, not a float
    if total < 0:
        return [-part for part in split_cents(-total, weights)]
    exact = [_exact_weight(w) for w in weights]
    if not exact:
        if total:
            raise ValueError(f"cannot split {total} cents into no parts")
        return []
    whole = sum(exact)
    if whole == 0:
        exact, whole = [Fraction(1)] * len(exact), Fraction(len(exact))
    quotas = [total * w / whole for w in exact]
    parts = [math.floor(q) for q in quotas]
    left = total - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: (parts[i] - quotas[i], i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def company_weights(
    rides: Iterable[tuple[str | None, float]], rule: str = DEFAULT_SPLIT_RULE
) -> dict[str, float]:
    """Each company's weight in a charge, by company name: rides are ``(company, km)``, a
    ride without company (None or "") counting for ``unassigned``. ``passenger_km``: the sum
    of the rides' km, each at least ``MIN_RIDE_KM``; ``rides``: the number of rides."""
    if rule not in SPLIT_RULES:
        raise ValueError(f"rule {rule!r}: expected one of {', '.join(SPLIT_RULES)}")
    per_company: dict[str, list[float]] = {}
    for company, km in rides:
        if not 0 <= km < math.inf:  # NaN too
            raise ValueError(f"ride of {company!r}: km {km!r} must be finite and not negative")
        per_company.setdefault(company or UNASSIGNED, []).append(km)
    if rule == "rides":
        return {c: float(len(kms)) for c, kms in sorted(per_company.items())}
    return {
        c: math.fsum([km if km > MIN_RIDE_KM else MIN_RIDE_KM for km in kms])
        for c, kms in sorted(per_company.items())
    }


@dataclass(frozen=True, slots=True)
class Share:
    """A company's part of a ledger entry."""

    company: str
    amount_cents: int
    passenger_km: float


def apportion(
    total_cents: int, rides: Sequence[tuple[str | None, float]], rule: str = DEFAULT_SPLIT_RULE
) -> list[Share]:
    """The shares of an entry of ``total_cents`` paying for ``rides`` (``(company, km)``), one
    per company, by company name. No rides: no shares (ValueError unless the total is 0)."""
    if not rides:
        if total_cents:
            raise ValueError(f"a charge of {total_cents} cents pays for no rides")
        return []
    km = company_weights(rides, "passenger_km")
    weights = km if rule == "passenger_km" else company_weights(rides, rule)
    companies = list(km)
    parts = split_cents(total_cents, [weights[c] for c in companies])
    return [Share(c, part, km[c]) for c, part in zip(companies, parts, strict=True)]


def ride_km(board_stop_id: str, alight_stop_id: str) -> float:
    """The straight-line distance in km between two stops of ``STOPS_TARIFF`` (0 for a stop
    the tariff lacks: the ride then weighs ``MIN_RIDE_KM``)."""
    tariff = fare_engine.load_tariff(STOPS_TARIFF)
    try:
        a, b = tariff.stop(board_stop_id), tariff.stop(alight_stop_id)
    except KeyError:
        log.warning(
            "no coordinates for %s or %s: the ride weighs the minimum",
            board_stop_id,
            alight_stop_id,
        )
        return 0.0
    return distance_m(a.lat, a.lon, b.lat, b.lon) / 1000


# --- the service: shares written with their ledger entries ----------------------------------


@functools.cache
def configured_rule() -> RevenueSplitRule:
    """``BIBO_REVENUE_SPLIT_RULE`` of this process, read once (``configured_rule.cache_clear()``
    reads it again)."""
    from backend.settings import get_settings

    return get_settings().revenue_split_rule


def _store(session: Session, entry: models.LedgerEntry, shares: Sequence[Share]) -> None:
    billing_repo.add_revenue_shares(
        session,
        [
            {
                "entry_id": entry.entry_id,
                "company": s.company,
                "month": entry.month,
                "amount_cents": s.amount_cents,
                "passenger_km": s.passenger_km,
            }
            for s in shares
        ],
    )


def record_charge_shares(
    session: Session,
    entry: models.LedgerEntry,
    rides: Sequence[Ride],
    rule: RevenueSplitRule | None = None,
) -> list[Share]:
    """Write the revenue shares of a posted (flushed) charge that pays for ``rides``
    ``(vehicle_id, board_stop_id, alight_stop_id)``: one per company, adding up to
    ``entry.amount_cents``. ``rule`` defaults to ``BIBO_REVENUE_SPLIT_RULE``. Two statements:
    the vehicles' companies, then one INSERT of the shares."""
    if entry.kind != "charge":
        raise ValueError(f"ledger entry {entry.entry_id} is a {entry.kind}, not a charge")
    companies = billing_repo.vehicle_companies(session, [v for v, _, _ in rides])
    shares = apportion(
        entry.amount_cents,
        [(companies.get(v), ride_km(board, alight)) for v, board, alight in rides],
        rule or configured_rule(),
    )
    _store(session, entry, shares)
    return shares


def record_reversal_shares(
    session: Session, reversal: models.LedgerEntry, reversed_entry_id: int
) -> list[Share]:
    """Write the shares of a posted (flushed) reversal: the negated shares of the charge it
    reverses. None if that charge has none (it predates apportionment: both stay
    ``unapportioned``). ValueError if the negated shares do not add up to the reversal."""
    if reversal.reverses is not None and reversal.reverses != reversed_entry_id:
        raise ValueError(
            f"ledger entry {reversal.entry_id} reverses {reversal.reverses}, "
            f"not {reversed_entry_id}"
        )
    shares = [
        Share(company, -cents, -km)
        for company, cents, km in billing_repo.revenue_shares(session, reversed_entry_id)
    ]
    if not shares:
        return []
    if sum(s.amount_cents for s in shares) != reversal.amount_cents:
        raise ValueError(
            f"reversal {reversal.entry_id} of {reversal.amount_cents} cents does not negate the "
            f"shares of entry {reversed_entry_id}"
        )
    _store(session, reversal, shares)
    return shares


# --- the monthly report ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompanyRevenue:
    """A company's revenue of one billing month (cents with the ledger's signs)."""

    company: str
    charged_cents: int
    """Its shares of the month's charges."""
    reversed_cents: int
    """Its shares of the month's reversals (zero or negative)."""
    net_cents: int
    """``charged_cents + reversed_cents``: its part of the month's ledger balance."""
    passenger_km: float
    """Net passenger-km of its rides: those of the month's live charges (0 for
    ``unapportioned``)."""
    entries: int
    """Ledger entries (charges and reversals) with a share for it."""


@dataclass(frozen=True, slots=True)
class RevenueReport:
    month: str
    companies: list[CompanyRevenue]
    """Companies by name, then ``unassigned``, then ``unapportioned``."""
    total_cents: int
    """The sum over the companies."""
    ledger_total_cents: int
    """The sum of the month's ledger entries, as the ledger holds it."""
    ledger_entries: int

    @property
    def balanced(self) -> bool:
        """The invariant: the companies' shares add up to the ledger."""
        return self.total_cents == self.ledger_total_cents


def _order(company: str) -> tuple[int, str]:
    return ((company == UNASSIGNED) + 2 * (company == UNAPPORTIONED), company)


def revenue_by_company(session: Session, month: str) -> list[CompanyRevenue]:
    """Each company's revenue of a billing month ``YYYY-MM``, entries without shares as
    ``unapportioned`` (see the module doc). Two queries."""
    if not _MONTH.fullmatch(month):
        raise ValueError(f"month: expected YYYY-MM, got {month!r}")
    sums: dict[str, dict[str, int]] = {}
    km: dict[str, list[float]] = {}
    for company, kind, cents, company_km, n in billing_repo.month_share_totals(session, month):
        row = sums.setdefault(company, {"charge": 0, "reversal": 0, "entries": 0})
        row[kind] = row.get(kind, 0) + cents
        row["entries"] += n
        km.setdefault(company, []).append(company_km)
    for kind, cents, n in billing_repo.month_unshared_totals(session, month):
        row = sums.setdefault(UNAPPORTIONED, {"charge": 0, "reversal": 0, "entries": 0})
        row[kind] = row.get(kind, 0) + cents
        row["entries"] += n
    out = []
    for company in sorted(sums, key=_order):
        row = sums[company]
        net = sum(cents for kind, cents in row.items() if kind != "entries")
        out.append(
            CompanyRevenue(
                company=company,
                charged_cents=row["charge"],
                reversed_cents=row["reversal"],
                net_cents=net,
                passenger_km=round(math.fsum(km.get(company, [])), 3) + 0.0,
                entries=row["entries"],
            )
        )
    return out


def revenue_report(session: Session, month: str) -> RevenueReport:
    """The month's revenue per company beside the ledger's total (``balanced`` checks the
    invariant; an unbalanced month is also logged as an error)."""
    companies = revenue_by_company(session, month)
    ledger_cents, ledger_entries = billing_repo.month_ledger_total(session, month)
    report = RevenueReport(
        month=month,
        companies=companies,
        total_cents=sum(c.net_cents for c in companies),
        ledger_total_cents=ledger_cents,
        ledger_entries=ledger_entries,
    )
    if not report.balanced:
        log.error(
            "revenue of %s does not add up: companies %d cents, ledger %d cents",
            month,
            report.total_cents,
            ledger_cents,
        )
    return report

"""Tickets and passes a rider holds elsewhere ("I already have a ticket"): a Deutschlandticket
bought from another seller, a JobTicket, a school, semester or Sozialticket, or free travel
(Schwerbehindertenausweis with Wertmarke). A registered entitlement makes the trips inside
its days and Tarifgebiete free at once (``backend.billing.service.Coverage``); an operator
verifies it against its evidence or revokes it. Every change re-bills the months it touches,
so a month already invoiced gets its next invoice version.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from sqlalchemy.orm import Session

from backend import models
from backend.billing import service as billing_service
from backend.passengers import repository as passengers_repo
from backend.passengers.schemas import EntitlementKind

MAX_VALIDITY_DAYS = 400
"""Longest validity bibo accepts for one registration (a Wertmarke runs a year; a longer
pass is registered again when it is renewed)."""


class EntitlementErrorReason(enum.Enum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    ALREADY_DECIDED = "already_decided"


class EntitlementError(Exception):
    def __init__(self, reason: EntitlementErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Decision(enum.StrEnum):
    VERIFY = "verify"
    REVOKE = "revoke"


@dataclass(frozen=True)
class Rebilled:
    """What a change of entitlements did to the bills: each month re-billed, its balance
    and the version of a new invoice (None when the month was not invoiced yet)."""

    months: list[tuple[str, int, int | None]]


def _check(
    kind: str, valid_from: dt.date, valid_to: dt.date, scope_areas: Sequence[str] | None
) -> None:
    kinds = get_args(EntitlementKind)
    if kind not in kinds:
        raise EntitlementError(
            EntitlementErrorReason.INVALID, f"kind: expected one of {list(kinds)}, got {kind!r}"
        )
    if valid_to < valid_from:
        raise EntitlementError(
            EntitlementErrorReason.INVALID,
            f"valid_to: expected a day on or after valid_from {valid_from}, got {valid_to}",
        )
    if (valid_to - valid_from).days >= MAX_VALIDITY_DAYS:
        raise EntitlementError(
            EntitlementErrorReason.INVALID,
            f"valid_to: expected at most {MAX_VALIDITY_DAYS} days of validity, "
            f"got {(valid_to - valid_from).days + 1}",
        )
    if scope_areas is not None and kind in billing_service.ELIGIBILITIES:
        raise EntitlementError(
            EntitlementErrorReason.INVALID,
            f"scope_areas: expected null for {kind!r} (an eligibility holds everywhere), "
            f"got {list(scope_areas)}",
        )
    if scope_areas is not None:
        known = billing_service.tarifgebiete()
        unknown = sorted(set(scope_areas) - known)
        if not scope_areas or unknown:
            raise EntitlementError(
                EntitlementErrorReason.INVALID,
                "scope_areas: expected Tarifgebiet codes of the WestfalenTarif "
                f"(e.g. {sorted(known)[:3]}), or null for everywhere; got "
                f"{unknown or list(scope_areas)}",
            )


def _rebill(session: Session, entitlement: models.Entitlement, now: dt.datetime) -> Rebilled:
    since = billing_service.month_bounds(billing_service.month_of(entitlement.valid_from))[0]
    months = billing_service.rebill_from(session, entitlement.passenger_id, since, now)
    return Rebilled([(m, total, inv.version if inv else None) for m, total, inv in months])


def register(
    session: Session,
    passenger_id: str,
    *,
    kind: str,
    valid_from: dt.date,
    valid_to: dt.date,
    scope_areas: Sequence[str] | None,
    evidence_ref: str,
    now: dt.datetime,
) -> tuple[models.Entitlement, Rebilled]:
    """Register a ticket the passenger holds; its trips are free from now on."""
    _check(kind, valid_from, valid_to, scope_areas)
    entitlement = passengers_repo.add_entitlement(
        session,
        passenger_id=passenger_id,
        kind=kind,
        valid_from=valid_from,
        valid_to=valid_to,
        scope_areas=",".join(sorted(set(scope_areas))) if scope_areas is not None else None,
        evidence_ref=evidence_ref,
        status="pending",
        created_at=now,
    )
    return entitlement, _rebill(session, entitlement, now)


def own(session: Session, passenger_id: str, entitlement_id: int) -> models.Entitlement:
    """The passenger's entitlement (``NOT_FOUND`` for another's: ids are not probeable)."""
    found = passengers_repo.entitlement(session, entitlement_id)
    if found is None or found.passenger_id != passenger_id:
        raise EntitlementError(
            EntitlementErrorReason.NOT_FOUND, f"entitlement {entitlement_id} not found"
        )
    return found


def withdraw(
    session: Session, passenger_id: str, entitlement_id: int, now: dt.datetime
) -> tuple[models.Entitlement, Rebilled]:
    """The passenger no longer holds the ticket: its trips are charged again."""
    entitlement = own(session, passenger_id, entitlement_id)
    if entitlement.status not in billing_service.APPLIED_ENTITLEMENTS:
        raise EntitlementError(
            EntitlementErrorReason.ALREADY_DECIDED,
            f"entitlement {entitlement_id} is {entitlement.status}",
        )
    entitlement.status = "withdrawn"
    entitlement.decided_at = now
    return entitlement, _rebill(session, entitlement, now)


def decide(
    session: Session,
    entitlement_id: int,
    operator_id: int,
    decision: Decision,
    note: str,
    now: dt.datetime,
) -> tuple[models.Entitlement, Rebilled]:
    """An operator verifies the ticket against its evidence, or revokes it (its trips are
    charged again, and invoiced months get a new version)."""
    entitlement = passengers_repo.entitlement(session, entitlement_id)
    if entitlement is None:
        raise EntitlementError(
            EntitlementErrorReason.NOT_FOUND, f"entitlement {entitlement_id} not found"
        )
    allowed = {"pending"} if decision is Decision.VERIFY else {"pending", "verified"}
    if entitlement.status not in allowed:
        raise EntitlementError(
            EntitlementErrorReason.ALREADY_DECIDED,
            f"entitlement {entitlement_id} is {entitlement.status}",
        )
    entitlement.status = "verified" if decision is Decision.VERIFY else "revoked"
    entitlement.decided_by = operator_id
    entitlement.decided_at = now
    entitlement.note = note
    if decision is Decision.VERIFY:
        return entitlement, Rebilled([])  # it applied already: nothing to re-bill
    return entitlement, _rebill(session, entitlement, now)


def passenger_entitlements(session: Session, passenger_id: str) -> list[models.Entitlement]:
    return passengers_repo.passenger_entitlements(session, passenger_id)


def queue(session: Session, status: str | None) -> list[models.Entitlement]:
    """Entitlements in ``status`` (every one for None), for the operators."""
    return passengers_repo.entitlements_in(session, status)

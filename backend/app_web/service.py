"""The passenger web app's own logic: invoices by signed link, each marked when a later
version superseded it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend import models
from backend.app_web import links
from backend.app_web.const import INVOICE_LINK_TTL_S
from backend.billing import service as billing_service
from backend.passengers import repository as passengers_repo


def superseded_by(invoices: list[models.Invoice]) -> dict[int, int]:
    """invoice id -> the newest version of its month, for every version that is not it."""
    newest: dict[str, int] = {}
    for i in invoices:
        newest[i.month] = max(newest.get(i.month, 0), i.version)
    return {i.invoice_id: newest[i.month] for i in invoices if i.version < newest[i.month]}


@dataclass(frozen=True)
class SignedLink:
    token: str
    expires_at: dt.datetime


def invoice_link(
    session: Session,
    secret: str,
    passenger_id: str,
    invoice_id: int,
    lang: links.Lang,
    now: dt.datetime,
) -> SignedLink | None:
    """A link that opens the passenger's invoice for ``INVOICE_LINK_TTL_S``; None when the
    invoice is not theirs."""
    if billing_service.own_invoice(session, passenger_id, invoice_id) is None:
        return None
    token, expires = links.sign(secret, passenger_id, invoice_id, lang, now, INVOICE_LINK_TTL_S)
    return SignedLink(token, expires)


@dataclass(frozen=True)
class LinkedInvoice:
    invoice: models.Invoice
    lang: links.Lang
    superseded_by: int | None


def linked_invoice(session: Session, secret: str, token: str, now: dt.datetime) -> LinkedInvoice:
    """The invoice a link opens (``links.LinkError`` if the link is not valid now, and as
    INVALID when the invoice or the account is gone)."""
    link = links.read(secret, token, now)
    invoice = billing_service.own_invoice(session, link.passenger_id, link.invoice_id)
    if invoice is None or passengers_repo.passenger(session, link.passenger_id) is None:
        raise links.LinkError(links.LinkErrorReason.INVALID)
    newer = superseded_by(billing_service.passenger_invoices(session, link.passenger_id))
    return LinkedInvoice(invoice, link.lang, newer.get(invoice.invoice_id))

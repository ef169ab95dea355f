"""The passenger API's route the web app adds: a signed, short-lived link to an invoice."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from backend.api.deps import OwnPassenger, SessionDep
from backend.api.schemas import DbId, errors
from backend.app_web import service as app_service

router = APIRouter(prefix="/v1/passengers", tags=["passenger"], responses=errors(400, 422))


class InvoiceLinkOut(BaseModel):
    url: str = Field(description="opens the printable invoice without a token, until expires_at")
    expires_at: dt.datetime


@router.post(
    "/{passenger_id}/invoices/{invoice_id}/link",
    response_model=InvoiceLinkOut,
    responses=errors(401, 404),
)
def invoice_link(
    invoice_id: DbId,
    request: Request,
    session: SessionDep,
    me: OwnPassenger,
    lang: Annotated[Literal["de", "en"], Query()] = "de",
) -> InvoiceLinkOut:
    """A link that opens the printable invoice for ``INVOICE_LINK_TTL_S`` seconds, to open
    or print in the browser (a link cannot carry the Bearer header)."""
    secret: str = request.app.state.settings.secret_key
    link = app_service.invoice_link(
        session, secret, me.passenger_id, invoice_id, lang, request.app.state.clock()
    )
    if link is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="invoice not found")
    return InvoiceLinkOut(url=f"/app/invoices/open/{link.token}", expires_at=link.expires_at)

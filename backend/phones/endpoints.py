"""The phone upload (docs/contracts.md: Phone sightings upload): read the body within its
bound, hand it to the phone service, count the outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from backend.api.schemas import ID_MAX_CHARS, ID_PATTERN, errors
from backend.api.uploads import answer_upload, json_body
from backend.phones.service import receive_phone_batch
from onboard import wire

router = APIRouter(prefix="/v1", tags=["phone"], responses=errors(400, 422))


@router.post(
    "/devices/{device_id}/sightings",
    response_model=wire.BatchAccepted,
    responses=errors(401, 413, 429),
    openapi_extra=json_body(wire.PhoneBatch),
)
async def upload_sightings(
    request: Request,
    device_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=ID_MAX_CHARS,
            pattern=ID_PATTERN,
            description="the device's id, as in the body",
        ),
    ],
    x_bibo_timestamp: Annotated[str | None, Header()] = None,
    x_bibo_signature: Annotated[str | None, Header()] = None,
) -> wire.BatchAccepted | JSONResponse:
    state = request.app.state

    def receive(raw: bytes, headers: dict[str, str]) -> wire.BatchAccepted:
        with state.sessions() as session, session.begin():
            return receive_phone_batch(
                session,
                device_id,
                headers,
                raw,
                state.clock(),
                state.beacon_resolvers,
                state.phone_limiter,
                state.phone_resend_limiter,
            )

    metrics = state.metrics
    return await answer_upload(request, receive, metrics.phone_batches, metrics.phone_rows)

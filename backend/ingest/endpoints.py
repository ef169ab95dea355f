"""The vehicle upload (docs/contracts.md: Vehicle upload): read the body within its bound,
hand it to the ingest service, count the outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from backend.api.schemas import errors
from backend.api.uploads import answer_upload, json_body
from backend.ingest.service import ingest
from onboard import wire

router = APIRouter(prefix="/v1", tags=["vehicle"], responses=errors(400, 422))


@router.post(
    "/vehicles/{vehicle_id}/batches",
    response_model=wire.BatchAccepted,
    responses=errors(401, 413, 429),
    openapi_extra=json_body(wire.Batch),
)
async def upload_batch(
    request: Request,
    vehicle_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=wire.IDENTIFIER_MAX_CHARS,
            pattern=wire.IDENTIFIER_PATTERN,
            description="the vehicle's id, as in the body",
        ),
    ],
    x_bibo_timestamp: Annotated[str | None, Header()] = None,
    x_bibo_signature: Annotated[str | None, Header()] = None,
) -> wire.BatchAccepted | JSONResponse:
    state = request.app.state

    def receive(raw: bytes, headers: dict[str, str]) -> wire.BatchAccepted:
        with state.sessions() as session, session.begin():
            return ingest(
                session,
                vehicle_id,
                headers,
                raw,
                state.clock(),
                state.vehicle_secrets,
                state.vehicle_limiter,
                state.resend_limiter,
            )

    return await answer_upload(request, receive, state.metrics.batches, state.metrics.sightings)

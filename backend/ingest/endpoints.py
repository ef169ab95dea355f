"""The vehicle upload (docs/contracts.md: Vehicle upload): read the body within its bound,
hand it to the ingest service, count the outcome."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from backend.api.schemas import errors
from backend.const import MAX_UPLOAD_BYTES
from backend.ingest.service import IngestError, ingest
from onboard import wire

router = APIRouter(prefix="/v1", tags=["vehicle"], responses=errors(400, 422))


@router.post(
    "/vehicles/{vehicle_id}/batches",
    response_model=wire.BatchAccepted,
    responses=errors(401, 413, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": wire.Batch.model_json_schema()}},
        }
    },
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
    metrics = state.metrics
    raw = await _read_limited(request)
    if raw is None:
        metrics.batches.labels("too_large").inc()
        return JSONResponse(
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            content={"detail": f"upload exceeds {MAX_UPLOAD_BYTES} bytes as sent"},
        )
    headers = {k.lower(): v for k, v in request.headers.items()}

    def work() -> wire.BatchAccepted:
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

    try:
        accepted = await run_in_threadpool(work)
    except IngestError as exc:
        metrics.batches.labels(exc.reason.value).inc()
        extra = {}
        if exc.retry_after_s is not None:
            extra["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail}, headers=extra)
    metrics.batches.labels("duplicate" if accepted.duplicate else "new").inc()
    metrics.sightings.inc(accepted.inserted)
    return accepted


async def _read_limited(request: Request) -> bytes | None:
    """The raw body, or None once it grows past ``MAX_UPLOAD_BYTES`` (read no further)."""
    declared = request.headers.get("content-length", "")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        return None
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        # The unit went away mid-upload (power cut, lost link); it will resend the batch.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="client disconnected") from None
    return b"".join(chunks)

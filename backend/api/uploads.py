"""What the signed uploads (vehicle batches, phone sightings) share at the HTTP edge: the body
read within its bound, the service's answer or refusal, and the count of each outcome."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from backend.const import MAX_UPLOAD_BYTES
from backend.ingest.service import IngestError
from onboard import wire

Receive = Callable[[bytes, dict[str, str]], wire.BatchAccepted]
"""Stores one upload from its raw body and its headers (lower-case names), in a transaction
of its own; raises ``IngestError`` to refuse it. Runs in the thread pool."""


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body itself: the schema it is checked
    against."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


async def answer_upload(
    request: Request, receive: Receive, results: Counter, stored: Counter
) -> wire.BatchAccepted | JSONResponse:
    """Read the body (413 beyond ``MAX_UPLOAD_BYTES``), hand it to ``receive`` and answer;
    ``results`` counts every outcome by label, ``stored`` the rows of new batches."""
    raw = await read_limited(request)
    if raw is None:
        results.labels("too_large").inc()
        return JSONResponse(
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            content={"detail": f"upload exceeds {MAX_UPLOAD_BYTES} bytes as sent"},
        )
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        accepted = await run_in_threadpool(receive, raw, headers)
    except IngestError as exc:
        results.labels(exc.reason.value).inc()
        extra = {}
        if exc.retry_after_s is not None:
            extra["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail}, headers=extra)
    results.labels("duplicate" if accepted.duplicate else "new").inc()
    stored.inc(accepted.inserted)
    return accepted


async def read_limited(request: Request) -> bytes | None:
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
        # The sender went away mid-upload (power cut, lost link); it will resend the batch.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="client disconnected") from None
    return b"".join(chunks)

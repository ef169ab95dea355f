"""The passenger's notification routes: the app's event stream (Server-Sent Events) and Web
Push subscriptions. Authenticated like every passenger route (bearer token, own id only);
the app reads the stream with ``fetch`` (``EventSource`` cannot send a header)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from backend.api.deps import OwnPassenger, SessionDep
from backend.api.schemas import errors
from backend.notifications import service as notifications_service
from backend.notifications.const import SSE_HEARTBEAT_S, SSE_POLL_S, SSE_STREAM_MAX_S
from backend.notifications.schemas import PushSubscriptionIn

router = APIRouter(prefix="/v1/passengers", tags=["passenger"], responses=errors(400, 422))
OWN = errors(401, 404)


def _read(
    sessions: sessionmaker[Session], passenger_id: str, after: int | None
) -> list[tuple[int, str, str]]:
    with sessions() as session:
        return notifications_service.stream_messages(session, passenger_id, after)


def _last_event_id(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


async def _events(
    request: Request, passenger_id: str, after: int | None, max_s: float
) -> AsyncIterator[str]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    started = last_beat = time.monotonic()
    yield f"retry: {int(SSE_POLL_S * 2000)}\n\n"
    while True:
        for notification_id, kind, payload in await run_in_threadpool(
            _read, sessions, passenger_id, after
        ):
            after = notification_id
            yield f"id: {notification_id}\nevent: {kind}\ndata: {payload}\n\n"
        if time.monotonic() - started >= max_s or await request.is_disconnected():
            return
        if time.monotonic() - last_beat >= SSE_HEARTBEAT_S:
            last_beat = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(min(SSE_POLL_S, max(0.0, max_s - (time.monotonic() - started))))


@router.get(
    "/{passenger_id}/events",
    response_class=StreamingResponse,
    responses=OWN | {200: {"content": {"text/event-stream": {}}}},
)
async def my_events(
    request: Request,
    me: OwnPassenger,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    max_s: Annotated[
        float, Query(ge=0, le=SSE_STREAM_MAX_S, description="end the stream after (s)")
    ] = SSE_STREAM_MAX_S,
) -> StreamingResponse:
    """Server-Sent Events: each notification once (``id`` is its number; reconnect with
    ``Last-Event-ID`` to continue after it; without it the newest few come first), ``event``
    its kind (be_in, be_out, still_on_board), ``data`` the message JSON. The stream ends
    after ``max_s`` seconds (0: what is there now); the client reconnects."""
    after = _last_event_id(last_event_id)
    return StreamingResponse(
        _events(request, me.passenger_id, after, max_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/{passenger_id}/push-subscriptions", status_code=status.HTTP_204_NO_CONTENT, responses=OWN
)
def add_push_subscription(
    body: PushSubscriptionIn, session: SessionDep, me: OwnPassenger
) -> Response:
    """Receive notifications by Web Push in this browser (its ``PushSubscription``); the
    endpoint must be a known push service."""
    try:
        notifications_service.subscribe(
            session, me.passenger_id, body.endpoint, body.keys.p256dh, body.keys.auth
        )
    except notifications_service.SubscriptionRefusedError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/{passenger_id}/push-subscriptions", status_code=status.HTTP_204_NO_CONTENT, responses=OWN
)
def remove_push_subscriptions(session: SessionDep, me: OwnPassenger) -> Response:
    """No more Web Push to any of the passenger's browsers."""
    notifications_service.unsubscribe_all(session, me.passenger_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

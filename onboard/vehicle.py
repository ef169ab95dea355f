"""Vehicle context: where the agent's position, stop, door and journey events come from.

A ``VehicleSource`` runs as a task beside the agent and hands validated ``wire.Event``
values to an ``EventSink`` (the agent's ``on_event``). Three sources exist:

- the simulator, which calls ``Agent.on_event`` directly (step-driven, no task) or pushes
  into a ``PushSource`` when it drives ``Agent.run``;
- ``onboard.gpsd.GpsdSource``: GNSS positions from gpsd (JSON protocol, TCP 2947);
- ``onboard.feed.VehicleFeedServer``: stop, door and journey events posted by the vehicle's
  onboard computer over a local HTTP JSON feed (format in ``onboard/README.md``).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Protocol

from onboard import wire

EventSink = Callable[[wire.Event], None]
"""Receives one validated vehicle event; synchronous and cheap (the agent queues it)."""


class VehicleSource(Protocol):
    """A producer of vehicle events, run by the agent until cancelled."""

    name: str
    """Short name for logs and metrics, e.g. ``"gpsd"``."""

    async def run(self, emit: EventSink) -> None:
        """Produce events into ``emit`` until cancelled; reconnects on its own."""
        ...


class PushSource:
    """A source fed by hand (the simulator, tests): ``push`` events, ``run`` forwards them.

    Events pushed before ``run`` starts are kept and forwarded first, in order.
    """

    name = "push"

    def __init__(self) -> None:
        self._emit: EventSink | None = None
        self._backlog: collections.deque[wire.Event] = collections.deque()

    def push(self, event: wire.Event) -> None:
        """Hand one event to the agent (or keep it until the source runs)."""
        if self._emit is None:
            self._backlog.append(event)
        else:
            self._emit(event)

    async def run(self, emit: EventSink) -> None:
        """Forward the backlog, then every pushed event, until cancelled."""
        while self._backlog:
            emit(self._backlog.popleft())
        self._emit = emit
        try:
            await asyncio.Event().wait()
        finally:
            self._emit = None

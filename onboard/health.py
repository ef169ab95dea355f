"""Health of the agent as one plain snapshot, built every tick (``Agent.health``).

``onboard.metrics`` exports it to Prometheus; ``bibo onboard status`` shows the outbox part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from onboard.beacon import BeaconHealth
from onboard.outbox import OutboxHealth


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """Everything the metrics show, at data time ``t_ms`` (UTC epoch ms).

    ``adverts`` counts received adverts by outcome since start; ``adverts_per_s`` is the
    rate over the last tick; ``last_upload_ms`` is the wall-clock time of the last stored
    batch; ``clock_offset_ms`` the estimated backend-minus-unit clock difference;
    ``beacon`` is ``None`` when the unit does not advertise the bus beacon.
    """

    t_ms: int
    adverts: Mapping[str, int]
    adverts_per_s: float
    open_rows: int
    events: int
    outbox: OutboxHealth
    uploads: Mapping[str, int]
    last_upload_ms: int | None
    clock_offset_ms: int | None
    scanner_restarts: int = 0
    adapter_resets: int = 0
    sources: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    beacon: BeaconHealth | None = None

"""Tuning constants of the passenger notifications."""

from __future__ import annotations

from typing import Final

NOTIFY_MAX_AGE_MS: Final = 30 * 60_000
"""Only a be-in (boarding) or be-out (alighting) at most this old when reconciliation sees it
is notified: a late upload or a rebuilt day must not wake riders about rides long over."""

DRAIN_BATCH: Final = 200
"""Queued notifications one drain round prepares and sends at most (the rest wait a round)."""

SSE_POLL_S: Final = 2.0
"""How often an open event stream looks for new notifications: the drain runs every
reconciliation round (5 s), so a shorter poll only costs queries."""

SSE_STREAM_MAX_S: Final = 300.0
"""An event stream ends after this long; the app reconnects with ``Last-Event-ID``, so a
stream never pins a server thread or a proxy connection for hours."""

SSE_HEARTBEAT_S: Final = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""

SSE_BACKLOG: Final = 20
"""A fresh stream (no ``Last-Event-ID``) starts with at most this many newest messages."""

PUSH_TTL_S: Final = 15 * 60
"""How long a push service keeps a message for a phone that is offline: a be-in told an
hour late is noise."""

PUSH_TIMEOUT_S: Final = 10.0
"""Time-out of one post to a push service."""

PUSH_RETRY_DELAYS_S: Final = (30, 120, 480)
"""Waits before each new post of a push the push service did not take (no answer, 429,
5xx), then it is given up: the last falls about 10 min after the first post, inside
``PUSH_TTL_S``, so no retried message arrives later than a first one could have."""

PUSH_RETRY_LEASE_S: Final = 3 * PUSH_TIMEOUT_S
"""A retry a drain has taken is hidden from other drains this long (a drain that dies
mid-post leaves it to the next one after the lease)."""

PUSH_SERVICE_HOSTS: Final = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.apple.com",
    "notify.windows.com",
)
"""Hosts (and their subdomains) a subscription's endpoint may name: the server posts to it,
so an arbitrary URL would let anyone make bibo send requests into its own network."""

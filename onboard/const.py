"""Every tuning constant of the onboard agent, each with one line on why it has that value."""

from __future__ import annotations

from typing import Final

# --- Windowing ---------------------------------------------------------------------------

WINDOW_MS: Final = 1000
"""Sighting window in ms: phones advertise every ~100-1000 ms, so 1 s keeps >=1 advert per row."""

# --- Agent loop --------------------------------------------------------------------------

UPLOAD_INTERVAL_MS: Final = 10_000
"""Seal a batch every 10 s: a be-out must reach the backend within ~2 min (DESIGN §5)."""

TICK_INTERVAL_S: Final = 1.0
"""Production tick period in s: one window length, so closed windows reach disk within ~1 s."""

MAX_SENDS_PER_TICK: Final = 20
"""Batches sent per tick at most, so one tick stays short after a long outage."""

DRAIN_MAX_ATTEMPTS: Final = 5
"""Rounds of sending in ``drain``; 5 rounds of backoff wait at most ~15 s before giving up."""

# --- Outbox ------------------------------------------------------------------------------

OUTBOX_SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of the outbox file; bump with a migration when the schema changes."""

OUTBOX_RECORD_VERSION: Final = 1
"""``version`` stored on every outbox row (events, sightings, batches)."""

MAX_BATCH_SIGHTINGS: Final = 5000
"""Sighting rows per batch at most: ~300 kB of JSON, ~40 kB gzipped; far below proxy limits."""

MAX_BATCH_EVENTS: Final = 2000
"""Vehicle events per batch at most: a busy bus emits ~1 event/s, so 10 s never comes close."""

SQLITE_BUSY_TIMEOUT_S: Final = 5.0
"""Seconds to wait for a lock held by another connection (e.g. an operator's sqlite3 shell)."""

DEFAULT_OUTBOX_PATH: Final = "bibo-outbox.sqlite3"
"""Relative to the working directory, which the service unit points at persistent storage."""

QUARANTINE_REASON_MAX_CHARS: Final = 500
"""A quarantine reason is kept for the operator; longer server messages are cut."""

# --- Value ranges the backend accepts (wire.Sightings) -----------------------------------

RSSI_MIN_DBM: Final = -127
"""Lowest RSSI the wire format accepts; a stack reporting less means "unknown"."""

RSSI_MAX_DBM: Final = 20
"""Highest RSSI the wire format accepts; BlueZ reports 127 for "not available"."""

TX_POWER_MIN_DBM: Final = -127
"""Lowest tx power the wire format accepts; -128 (0x80) is "unknown" in BLE and sent as null."""

TX_POWER_MAX_DBM: Final = 127
"""Highest tx power a signed byte can carry."""

# --- Upload ------------------------------------------------------------------------------

HTTP_CONNECT_TIMEOUT_S: Final = 10.0
"""Connect timeout in s: a mobile link may need a few round trips of ~1 s to set up TLS."""

HTTP_READ_TIMEOUT_S: Final = 30.0
"""Read timeout in s: the backend answers after storing a batch; allow for a slow database."""

HTTP_WRITE_TIMEOUT_S: Final = 30.0
"""Write timeout in s: a 40 kB gzipped batch over a poor 2G/3G uplink."""

HTTP_POOL_TIMEOUT_S: Final = 5.0
"""Pool timeout in s: the agent sends one request at a time, so waiting longer means a bug."""

GZIP_LEVEL: Final = 6
"""zlib's default trade-off; columnar JSON shrinks ~8x at this level."""

BACKOFF_BASE_MS: Final = 1000
"""First retry after ~1 s: most failures on a mobile link are short handovers."""

BACKOFF_CAP_MS: Final = 300_000
"""Never wait more than 5 min: a be-out must still arrive within minutes once the link is back."""

BACKOFF_JITTER: Final = 0.5
"""Fraction of the delay randomised, so a fleet recovering from an outage does not sync up."""

LOG_DETAIL_MAX_CHARS: Final = 300
"""Server detail quoted in one log line at most; keeps log lines single and bounded."""

RETRY_STATUSES: Final = frozenset({401, 403, 404, 408, 425, 429})
"""4xx answers about the unit or the moment, not the batch (clock skew, secret, unknown
vehicle, overload): retried, because quarantining them would empty the queue into quarantine."""

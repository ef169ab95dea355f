"""Every tuning constant of the onboard agent, each with one line on why it has that value."""

from __future__ import annotations

from typing import Final

# --- Windowing ---------------------------------------------------------------------------

WINDOW_MS: Final = 1000
"""Sighting window in ms: phones advertise every ~100-1000 ms, so 1 s keeps >=1 advert per row."""

MAX_WINDOW_MS: Final = 60_000
"""Longest window ``wire.Batch.window_ms`` takes: with a longer one no batch could ever seal."""

# --- Agent loop --------------------------------------------------------------------------

UPLOAD_INTERVAL_MS: Final = 10_000
"""Seal a batch every 10 s: a be-out must reach the backend within ~2 min
(docs/architecture.md, Reconciliation)."""

TICK_INTERVAL_S: Final = 1.0
"""Production tick period in s: one window length, so closed windows reach disk within ~1 s."""

MAX_SENDS_PER_TICK: Final = 20
"""Batches sent per tick at most, so one tick stays short after a long outage."""

DRAIN_MAX_ATTEMPTS: Final = 5
"""Rounds of sending in ``drain``; 5 rounds of backoff wait at most ~15 s before giving up."""

# --- Outbox ------------------------------------------------------------------------------

OUTBOX_SCHEMA_VERSION: Final = 3
"""``PRAGMA user_version`` of the outbox file; bump with a migration when the schema changes.
2: batch bodies stored gzip-compressed, and whether a batch was ever offered to the backend.
3: a table for stored rows that sealing set aside because the wire format refuses them."""

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

TX_POWER_MAX_DBM: Final = 126
"""Highest tx power uploaded as a value: 127 (0x7F) is what phones send for "unknown"
(docs/contracts.md, BLE payload), so it goes up as null like -128."""

# --- Upload ------------------------------------------------------------------------------

HTTP_CONNECT_TIMEOUT_S: Final = 10.0
"""Connect timeout in s: a mobile link may need a few round trips of ~1 s to set up TLS."""

HTTP_READ_TIMEOUT_S: Final = 30.0
"""Read timeout in s: the backend answers after storing a batch; allow for a slow database."""

HTTP_WRITE_TIMEOUT_S: Final = 30.0
"""Write timeout in s: a 40 kB gzipped batch over a poor 2G/3G uplink."""

HTTP_POOL_TIMEOUT_S: Final = 5.0
"""Pool timeout in s: the agent sends one request at a time, so waiting longer means a bug."""

HTTP_KEEPALIVE_EXPIRY_S: Final = 20.0
"""How long an idle connection to the backend is kept for the next upload, in s. Set by
hand: two upload intervals, so a bus reuses one connection (no TLS handshake per batch on a
mobile link), and well below the backend's keep-alive (``backend.const.SERVER_KEEP_ALIVE_S``),
so the unit, not the server, closes an idle connection (a batch sent just as the server
closed gets no answer)."""

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

# --- Windowing memory --------------------------------------------------------------------

MAX_OPEN_ROWS: Final = 50_000
"""(window, token) rows held in memory at most, ~12 MB: 200 phones for 250 s of windows,
far beyond the 1-2 open windows of normal operation or the 30 of the simulator's ticks."""

# --- Sealing and catch-up ----------------------------------------------------------------

OFFLINE_SEAL_INTERVAL_MS: Final = 300_000
"""While sends fail, seal every 5 min instead of every 10 s: 30x fewer requests to catch up
after an outage, and larger batches compress better on disk."""

MAX_BATCHES_PER_S: Final = 2.0
"""Default send rate cap: a fleet of 500 buses catching up sends <= 1000 batches/s in total,
and one 5000-row batch every 0.5 s drains a 6-hour backlog in minutes."""

HEARTBEAT: Final = True
"""``bibo onboard run`` seals an empty batch when nothing was heard for an upload interval,
so the backend learns every <= 10 s that the bus is alive and heard nobody (a be-out)."""

# --- Outbox disk cap ---------------------------------------------------------------------

OUTBOX_CAP_BYTES: Final = 256 * 1024 * 1024
"""Default disk cap of the outbox: ~50 bus-hours of a crowded bus, weeks of a normal one."""

OUTBOX_CAP_LOW_WATER: Final = 0.9
"""After hitting the cap, drop down to 90 % of it, so one drop round frees room for minutes
instead of dropping a little on every seal."""

OUTBOX_UNBATCHED_ROW_BYTES: Final = 48
"""Approximate on-disk bytes of one unbatched sighting row; sizes a drop of unbatched rows."""

# --- Scanner watchdog --------------------------------------------------------------------

SCANNER_WATCHDOG_TIMEOUT_S: Final = 90.0
"""Restart scanning after 90 s without any advert: BlueZ stalls show as total silence, and a
bus in service hears some phone well within that (habluetooth uses the same order)."""

SCANNER_WATCHDOG_MAX_TIMEOUT_S: Final = 900.0
"""Silence after a restart doubles the next timeout up to 15 min, so an empty bus in the depot
does not restart the radio every 90 s all night."""

ADAPTER_POWER_CYCLE_S: Final = 2.0
"""Seconds the adapter stays powered off during a reset, letting BlueZ drop its state."""

# --- Bus beacon (docs/contracts.md, Bus beacon) ---------------------------------------

BEACON_MEASURED_POWER_DBM: Final = -59
"""iBeacon measured power (RSSI in dBm a phone sees at 1 m) advertised by default: the usual
figure for a 0 dBm BLE transmitter; measure it at 1 m for a unit type and pass
``--beacon-power``. Phones use it only to estimate distance."""

BEACON_RETRY_BASE_MS: Final = 1000
"""First retry of a beacon BlueZ refused after ~1 s: most refusals are an adapter being reset."""

BEACON_RETRY_CAP_MS: Final = 60_000
"""Retry a refused beacon at least once a minute: a bus iPhones cannot see loses their be-ins
at every stop, and a registration attempt is one local D-Bus call."""

BEACON_DOWN_ALERT_S: Final = 120.0
"""Flag a beacon down for 2 min: longer than the first six retries (~1 min in all), so a
transient refusal is not flagged, and shorter than a typical stop-to-stop ride."""

BLUEZ_CALL_TIMEOUT_S: Final = 10.0
"""Bound on one round of D-Bus calls to BlueZ, which answers in milliseconds: a longer wait
means bluetoothd hangs, and the beacon is retried rather than waiting for ever."""

# --- Vehicle context ---------------------------------------------------------------------

GPSD_DEFAULT_PORT: Final = 2947
"""gpsd's IANA-registered port."""

GPSD_MIN_INTERVAL_MS: Final = 1000
"""One position per second at most: stops are 300+ m apart, so 1 Hz places the bus at a stop,
and faster receivers (5-10 Hz) would only add bytes."""

GPSD_RECONNECT_MAX_S: Final = 60.0
"""Reconnect to gpsd with backoff up to once a minute while it is down."""

GPSD_MAX_LINE_BYTES: Final = 65_536
"""gpsd reports are < 4 kB; a longer line means a broken peer and ends the connection."""

POSITION_DECIMALS: Final = 6
"""Latitude/longitude rounded to 1e-6 degrees (~0.1 m): GNSS is ~2 m accurate, more digits
only cost bytes."""

FEED_MAX_BODY_BYTES: Final = 65_536
"""A vehicle-feed request carries a few events; 64 kB refuses garbage early."""

FEED_MAX_HEADER_BYTES: Final = 8192
"""Request line plus headers of one feed request at most."""

FEED_REQUEST_TIMEOUT_S: Final = 10.0
"""A local client sends a request in milliseconds; a stalled one is dropped after 10 s."""

SOURCE_RESTART_DELAY_S: Final = 5.0
"""A vehicle source that crashed is started again after 5 s."""

# --- Clock offset ------------------------------------------------------------------------

CLOCK_OFFSET_APPLY_MS: Final = 5000
"""Sign requests with the server-corrected time only when the unit's clock is >= 5 s off:
an NTP-synced clock is never moved by the Date header's 1 s resolution."""

CLOCK_OFFSET_SAMPLES: Final = 16
"""Date-header samples intersected for the offset estimate (a few minutes of uploads)."""

# --- Health ------------------------------------------------------------------------------

METRICS_DEFAULT_ADDRESS: Final = "127.0.0.1:9101"
"""Prometheus metrics on loopback by default; 9101 is unused by the usual exporters."""

STATUS_METRICS_TIMEOUT_S: Final = 1.0
"""``bibo onboard status`` waits this long for a running agent's metrics."""

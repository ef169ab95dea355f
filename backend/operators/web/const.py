"""Tuning constants of the operator web pages, each with the reason for its value."""

import datetime as dt
from typing import Final

LOGIN_FREE_FAILURES: Final = 5
"""Failed logins for one operator name from one client address before every further attempt
from there must wait (``LOGIN_BACKOFF_BASE``, doubling). Five covers honest typos; counting
per address means an attacker's failures never slow the owner down elsewhere."""

LOGIN_FREE_FAILURES_PER_ADDRESS: Final = 20
"""Failed logins from one client address, whatever the names, before every further attempt
from it must wait: colleagues behind one office NAT do not throttle each other, and trying
many names from one address soon slows down."""

LOGIN_BACKOFF_BASE: Final = dt.timedelta(seconds=30)
"""The wait after the last free failure; each further failure doubles it (30 s, 1, 2, 4,
8 min). Half a minute lets a person who mistyped try again soon."""

LOGIN_BACKOFF_CAP: Final = dt.timedelta(minutes=15)
"""The longest wait between two attempts (the old fixed lock-out): a few guesses an hour at
most, and no attacker can keep anyone waiting longer than this."""

LOGIN_FAILURE_MEMORY: Final = dt.timedelta(hours=1)
"""How long a failed login counts (older ones are deleted). Well above ``LOGIN_BACKOFF_CAP``,
so the back-off can reach it: guessing steadily from one address gets about nine tries an
hour per name, about 24 across all names; a quiet hour forgives everything."""

SESSION_MAX_AGE_S: Final = 8 * 3600
"""An operator session lasts one working shift (from login); after that, log in again. The
server-side session row and the cookie expire together."""

SESSION_ID_BYTES: Final = 32
"""Random bytes of a web session id (256 bit): the cookie carries it, the database only its
SHA-256."""

SESSION_COOKIE: Final = "bibo_ops"
"""Named apart from anything else on the host; scoped to ``/ops``."""

CSRF_TOKEN_BYTES: Final = 32
"""Per-session anti-forgery token (256 bit), carried by every POST form."""

DASHBOARD_DAYS: Final = 14
"""Service days shown by the dashboard's trips-per-day chart: two weeks show the weekly rhythm."""

CONFIDENCE_BINS: Final = 10
"""Histogram bins of detection confidence over [0, 1] (0.1 wide)."""

TRACE_WIDTH_PX: Final = 960
TRACE_HEIGHT_PX: Final = 380
"""The RSSI plot's drawing size; it scales to the page width (SVG viewBox)."""

TRACE_RSSI_RANGE_DBM: Final = (-100, -30)
"""Default RSSI axis: BLE phones are heard between about -100 (edge) and -30 dBm (touching)."""

LOGIN_IPV6_PREFIX: Final = 64
"""The login throttle counts IPv6 clients by their /64: a subscriber gets a whole /64, so a
single address says nothing about who is guessing."""

PAGE_SIZES: Final = (25, 50, 100, 200)
"""The page sizes a list offers: a screenful up to what still renders at once."""

DEFAULT_PAGE_SIZE: Final = 50
"""Rows a list shows unless asked otherwise."""

CSV_MAX_ROWS: Final = 100_000
"""Rows one CSV export holds at most, so one click cannot make the server read the whole
trips table into memory; filter by day, line or vehicle for the rest."""

SEARCH_LIMIT: Final = 20
"""Ids of each kind the search lists: enough to pick from, few enough to read."""

QUALITY_DAYS: Final = 28
"""The quality view's default period: four whole weeks, so every weekday counts alike."""

DAILY_CHART_WIDTH_PX: Final = 1100
"""The daily revenue chart's drawing width: a month's 31 bars side by side across the page
(at the bar chart's usual height it stays a strip, not a square)."""

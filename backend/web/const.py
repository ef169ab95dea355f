"""Tuning constants of the operator web pages, each with the reason for its value."""

import datetime as dt
from typing import Final

LOGIN_MAX_FAILURES: Final = 5
"""Failed logins allowed per operator name in ``LOGIN_WINDOW``; the next attempt is refused
(429). Five covers honest typos; with 10+ character passwords, 20 guesses an hour get nowhere."""

LOGIN_WINDOW: Final = dt.timedelta(minutes=15)
"""How long a failed login counts against its name (OWASP's usual lock-out period)."""

SESSION_MAX_AGE_S: Final = 8 * 3600
"""An operator session lasts one working shift; after that, log in again."""

SESSION_COOKIE: Final = "bibo_ops"
"""Named apart from anything else on the host; scoped to ``/ops``."""

CSRF_TOKEN_BYTES: Final = 32
"""Per-session anti-forgery token (256 bit), carried by every POST form."""

DASHBOARD_DAYS: Final = 14
"""Service days shown by the dashboard's trips-per-day chart: two weeks show the weekly rhythm."""

REVENUE_MONTHS: Final = 12
"""Billing months shown by the dashboard's revenue chart."""

CONFIDENCE_BINS: Final = 10
"""Histogram bins of detection confidence over [0, 1] (0.1 wide)."""

LOW_CONFIDENCE: Final = 0.9
"""Trips below this detection confidence are flagged for review in the lists."""

RECENT_TRIPS_LIMIT: Final = 500
"""Rows of the trip list (and its CSV) when no service day is chosen; a day is never cut."""

TRACE_WIDTH_PX: Final = 960
TRACE_HEIGHT_PX: Final = 380
"""The RSSI plot's drawing size; it scales to the page width (SVG viewBox)."""

TRACE_RSSI_RANGE_DBM: Final = (-100, -30)
"""Default RSSI axis: BLE phones are heard between about -100 (edge) and -30 dBm (touching)."""

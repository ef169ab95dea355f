"""Tuning constants of the backend, each with the reason for its value."""

from typing import Final

SERVICE_DAY_TZ: Final = "Europe/Berlin"
"""Service days are cut in local time of the three counties."""

SERVICE_DAY_START_HOUR: Final = 3
"""A service day runs 03:00-03:00 local time, so night buses belong to the evening before."""

MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""Largest accepted upload after decompression; a 10 s batch of a full bus is ~100 KB."""

TOKEN_RESOLUTION_INTERVALS: Final = (-1, 0, 1)
"""Token intervals tried around a sighting's own: phone clocks may be off by up to 60 s, so a
sighting near a boundary may carry the previous or the next interval's token."""

MIN_SEGMENT_PRESENCE: Final = 0.3
"""Share of a between-stops segment's windows in which a device must be heard to count as on
board for that segment. Riders are heard in most 1 s windows while the bus moves; people left
at a stop are not heard at all once the bus is a few hundred metres away."""

MAX_SEGMENT_GAP: Final = 1
"""Unheard segments bridged inside one ride: a short stretch of lost adverts (body shadow,
crowding) must not split one trip into two."""

RECONCILE_INTERVAL_S: Final = 30.0
"""How often the service reconciles service days that received data (first version)."""

SECRET_BYTES: Final = 32
"""Length of vehicle secrets, API tokens and device keys (256 bit)."""

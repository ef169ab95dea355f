"""Tuning constants of the simulator, each with the reason for its value (STYLE.md §4)."""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

# --- time -------------------------------------------------------------------------------

LOCAL_TZ: Final = ZoneInfo("Europe/Berlin")
"""The three counties' local time; service days and timetables are planned in it."""

SERVICE_DAY_START: Final = dt.time(3, 0)
"""A service day runs 03:00–03:00 local (DESIGN §4): night buses belong to the day before."""

DEFAULT_SERVICE_START: Final = dt.time(5, 30)
"""First departure of a typical rural line in the Ruhr-Lippe area."""

DEFAULT_SERVICE_END: Final = dt.time(21, 30)
"""Last departure of a typical rural line; later demand is served by on-demand buses."""

# --- network ----------------------------------------------------------------------------

NETWORK_VERSION: Final = 1
"""The network file format this code reads; a different ``version`` is refused."""

EARTH_RADIUS_M: Final = 6_371_008.8
"""Mean Earth radius (IUGG) in metres; haversine error is < 0.5 % at our scale."""

# --- timetable --------------------------------------------------------------------------

ROAD_FACTOR: Final = 1.35
"""Road distance / straight-line distance between neighbouring stops on rural roads."""

URBAN_SPEED_MPS: Final = 6.5
"""Mean running speed (m/s, incl. acceleration) on short in-town segments (~23 km/h)."""

RURAL_SPEED_MPS: Final = 12.5
"""Mean running speed (m/s) on long overland segments (~45 km/h)."""

RURAL_SEGMENT_M: Final = 3000.0
"""Road length (m) from which a segment counts as fully overland for the speed blend."""

SPEED_SIGMA: Final = 0.15
"""Log-normal spread of a segment's speed (traffic, lights): ~±15 % run-time noise."""

DWELL_MIN_MS: Final = 15_000
DWELL_MAX_MS: Final = 40_000
"""Dwell per stop (ms) from arrival to departure; the brief's 15–40 s."""

DOOR_DELAY_MIN_MS: Final = 1_500
DOOR_DELAY_MAX_MS: Final = 4_000
"""Doors open this long after the arrival and close this long before departure (ms)."""

MIN_LAYOVER_MS: Final = 300_000
"""Minimum recovery time at a terminus (5 min, as in most German rural timetables)."""

RUN_TIME_SLACK: Final = 0.10
"""Extra share of the nominal run time planned into the cycle to absorb delays."""

HEADWAY_ROUNDING_MIN: Final = 5
"""Derived headways are rounded up to a multiple of this (clock-face timetables)."""

POSITION_PERIOD_MS: Final = 10_000
"""A moving bus reports its position every 10 s (the brief)."""

FLEET_NUMBER_MIN: Final = 1000
FLEET_NUMBER_MAX: Final = 9000
"""Range of the 4-digit fleet numbers in vehicle ids like ``RLG-4711``."""

# --- population -------------------------------------------------------------------------

CHILD_SHARE: Final = 0.15
"""Share of passengers riding as children (school traffic dominates rural lines)."""

TRIP_COUNT_WEIGHTS: Final = ((1, 0.15), (2, 0.75), (4, 0.10))
"""(trips per day, probability): mostly out and back, some one-way, a few two round trips."""

MORNING_MEAN_MIN: Final = 7 * 60 + 30
MORNING_SIGMA_MIN: Final = 50
"""Arrival at the first stop (local minutes after midnight): a morning peak around 07:30."""

MIDDAY_MEAN_MIN: Final = 12 * 60 + 30
MIDDAY_SIGMA_MIN: Final = 60
"""Third and fourth trips of two-round-trip riders start around midday."""

AFTERNOON_MEAN_MIN: Final = 16 * 60 + 30
AFTERNOON_SIGMA_MIN: Final = 90
"""The return trip: an afternoon peak around 16:30, wider than the morning one."""

MIN_STAY_MS: Final = 20 * 60_000
"""A passenger stays at least 20 min at a destination before the next trip."""

BOARD_MARGIN_MS: Final = 3_000
"""A passenger must be at the stop this long before the doors close to board (ms)."""

PHONE_MODELS: Final = (
    ("iphone-15", -8, 0.22),
    ("iphone-se", -10, 0.08),
    ("pixel-8", -7, 0.10),
    ("galaxy-s23", -9, 0.18),
    ("galaxy-a14", -12, 0.17),
    ("redmi-note-12", -5, 0.15),
    ("moto-g54", -4, 0.10),
)
"""(model, advertised tx power at 1 m in dBm, market share): -8 dBm ±4 by model."""

TX_CALIBRATION_SIGMA_DB: Final = 2.0
"""How far a phone's real radiated power is from its model's advertised value (dB, 1σ)."""

ADV_INTERVALS_MS: Final = ((100, 0.2), (250, 0.55), (1000, 0.25))
"""(advertising interval ms, share): Android's low-latency/balanced/low-power modes."""

CARRY_WEIGHTS: Final = (("hand", 0.25), ("pocket", 0.45), ("bag", 0.30))
"""Where riders carry the phone; it sets the extra body/bag attenuation."""

CLOCK_SKEW_SIGMA_MS: Final = 20_000
CLOCK_SKEW_MAX_MS: Final = 60_000
"""Phone clock error (ms): mostly NTP-synced, clipped to the contract's ±60 s."""

INSIDE_DISTANCE_MIN_M: Final = 1.0
INSIDE_DISTANCE_MAX_M: Final = 12.0
"""A rider's distance to the onboard receiver (m): a 12 m solo bus, receiver mid-front."""

WAIT_DISTANCE_MIN_M: Final = 3.0
WAIT_DISTANCE_MAX_M: Final = 12.0
"""A passenger waiting to board stands this far from the receiver (m)."""

WALK_SPEED_MPS: Final = 1.4
"""Walking speed (m/s) of alighted passengers and passers-by."""

ALIGHT_START_DISTANCE_M: Final = 2.5
"""Distance (m) to the receiver just after stepping out of the door."""

LEAVE_TAIL_MS: Final = 5_000
"""An alighted passenger stays audible until this long after the bus departs (ms)."""

BYSTANDER_KIND_WEIGHTS: Final = (("stop_wait", 0.5), ("walk_past", 0.3), ("alongside", 0.2))
"""Bystander episode kinds: waiting at a stop, walking past a dwelling bus, car/bike alongside."""

BYSTANDER_EPISODES_MAX: Final = 3
"""A bystander shows up near buses 1..3 times a day."""

STOP_WAIT_MIN_MS: Final = 5 * 60_000
STOP_WAIT_MAX_MS: Final = 30 * 60_000
"""How long a bystander lingers at a stop (waiting for someone, another bus, a café)."""

STOP_WAIT_DISTANCE_MIN_M: Final = 3.0
STOP_WAIT_DISTANCE_MAX_M: Final = 20.0
"""Distance of a lingering bystander to the receiver (m)."""

WALK_PAST_CLOSEST_MIN_M: Final = 1.5
WALK_PAST_CLOSEST_MAX_M: Final = 10.0
"""Closest approach (m) of a passer-by to the receiver."""

WALK_PAST_HALF_MS: Final = 25_000
"""A passer-by is simulated from 25 s before to 25 s after the closest approach."""

ALONGSIDE_MIN_MS: Final = 10_000
ALONGSIDE_MAX_MS: Final = 60_000
"""How long a car or cyclist keeps pace with a moving bus (ms)."""

ALONGSIDE_DISTANCE_MIN_M: Final = 2.0
ALONGSIDE_DISTANCE_MAX_M: Final = 6.0
"""Distance (m) of a car or cyclist alongside to the receiver."""

OTHER_BUS_DISTANCE_MIN_M: Final = 8.0
OTHER_BUS_DISTANCE_MAX_M: Final = 25.0
"""Distance (m) between a rider in one bus and the receiver of another bus at the same stop."""

# --- radio ------------------------------------------------------------------------------

REFERENCE_LOSS_1M_DB: Final = 40.0
"""Free-space path loss at 1 m and 2.44 GHz: 20·log10(4π·1 m / 0.123 m) ≈ 40 dB."""

ANTENNA_LOSS_DB: Final = 6.0
"""Phone + receiver antenna inefficiency (dB): puts a hand-held phone at ~-55 dBm at 1 m."""

PATH_LOSS_EXPONENT_INSIDE: Final = 1.8
"""Inside the metal bus body multipath guides the signal: exponent below free space."""

PATH_LOSS_EXPONENT_OUTSIDE: Final = 2.3
"""Outdoors at a stop, with people and street furniture: a bit above free space."""

MIN_DISTANCE_M: Final = 0.5
"""Distances below this are clamped; the log-distance model is invalid near field."""

BODY_LOSS_DOORS_CLOSED_DB: Final = 14.0
"""Extra loss (dB) through the closed bus body and tinted windows for someone outside."""

BODY_LOSS_DOORS_OPEN_DB: Final = 5.0
"""Extra loss (dB) for someone outside while the doors are open (partial line of sight)."""

CARRY_LOSS_DB: Final = {"hand": 0.0, "pocket": 5.0, "bag": 9.0}
"""Extra attenuation (dB) by carry position: the holder's body and the bag absorb 2.4 GHz."""

SHADOWING_SIGMA_DB: Final = 4.0
"""Log-normal shadowing (dB, 1σ) per person and episode: seat, orientation, crowd."""

FADING_SIGMA_DB: Final = 3.0
"""Fast fading (dB, 1σ) per advertisement: multipath changes from packet to packet."""

SENSITIVITY_DBM: Final = -95
"""Receiver sensitivity (dBm) of a typical USB BLE adapter at 1 Mbit/s."""

PACKET_LOSS_BASE: Final = 0.03
"""Share of adverts lost even at strong signal (collisions, Wi-Fi on the same channel)."""

PACKET_LOSS_RAMP_DB: Final = 6.0
"""Loss grows linearly from the base to 100 % over the last 6 dB above sensitivity."""

SCAN_HEAR_PROB: Final = 0.45
"""Chance the scanner is listening when an advert is sent (scan window/interval, channels).

With 100 ms–1 s advertising intervals this yields ~0.4–4.5 heard adverts per second.
"""

ADV_DELAY_MAX_MS: Final = 10
"""BLE adds a random 0–10 ms advDelay to every advertising event (Core spec 4.4.2.2.1)."""

RSSI_MIN_DBM: Final = -127
RSSI_MAX_DBM: Final = 20
"""Range an RSSI can take on the wire (DESIGN §3 schema)."""

# --- ground truth -----------------------------------------------------------------------

GROUND_TRUTH_VERSION: Final = 1
"""Version of the persisted ground-truth JSON (STYLE.md §11)."""

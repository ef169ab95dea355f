"""Tuning constants of the simulator, each with the reason for its value (docs/style.md,
Named constants).

Values marked *assumed* are engineering estimates, not measurements; they are the knobs to
turn when field data (RSSI traces from a real bus) arrive.
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

# --- time -------------------------------------------------------------------------------

LOCAL_TZ: Final = ZoneInfo("Europe/Berlin")
"""The three counties' local time; service days and timetables are planned in it."""


DEFAULT_SERVICE_START: Final = dt.time(5, 30)
"""First departure of a typical rural line in the Ruhr-Lippe area."""

DEFAULT_SERVICE_END: Final = dt.time(21, 30)
"""Last departure of a typical rural line; later demand is served by on-demand buses."""

# --- network ----------------------------------------------------------------------------

NETWORK_VERSION: Final = 1
"""The network file format this code reads; a different ``version`` is refused."""


PROJECTION_ORIGIN: Final = (51.45, 8.15)
"""(lat, lon) of the local flat projection: the middle of the three counties."""

HUB_MIN_LINES: Final = 3
"""A stop served by this many lines is a hub: long stands, timed transfers, several bays."""

# --- GTFS -------------------------------------------------------------------------------

GTFS_DEFAULT_MUNICIPALITY: Final = "unknown"
"""Municipality of an imported stop whose name has no ``Town, Place`` prefix."""

GTFS_AGENCY_URL: Final = "https://www.nwl-info.de"
"""agency_url of the exported feed (required by GTFS); the regional transit authority."""

# --- timetable --------------------------------------------------------------------------

ROAD_FACTOR: Final = 1.35
"""Road distance / straight-line distance between neighbouring stops on rural roads."""

URBAN_SPEED_MPS: Final = 6.5
"""Mean running speed (m/s, incl. acceleration) on short in-town segments (~23 km/h)."""

RURAL_SPEED_MPS: Final = 12.5
"""Mean running speed (m/s) on long overland segments (~45 km/h)."""

RURAL_SEGMENT_M: Final = 3000.0
"""Road length (m) from which a segment counts as fully overland for the speed blend."""

SPEED_SIGMA: Final = 0.12
"""Log-normal spread of a segment's speed from driver and road: ~±12 % run-time noise."""

PEAK_MORNING_MIN: Final = 7 * 60 + 30
PEAK_AFTERNOON_MIN: Final = 16 * 60 + 45
PEAK_WIDTH_MIN: Final = 55
"""Traffic peaks (local minutes after midnight) and their Gaussian width (min, 1σ)."""

PEAK_SLOWDOWN_URBAN: Final = 0.35
PEAK_SLOWDOWN_RURAL: Final = 0.08
"""Share of speed lost at the height of a peak in town and overland (assumed: rush-hour
bus speeds in German mid-size towns drop by about a third)."""

TRAFFIC_LIGHT_PROB_URBAN: Final = 0.45
"""Chance that an in-town segment has a red light the bus must wait at."""

TRAFFIC_LIGHT_MIN_MS: Final = 8_000
TRAFFIC_LIGHT_MAX_MS: Final = 55_000
"""How long a bus stands at a red light (ms): a 60–90 s signal cycle."""

INCIDENT_PROB: Final = 0.04
"""Chance a journey meets an incident (road works, accident, ramp for a wheelchair)."""

INCIDENT_MIN_MS: Final = 120_000
INCIDENT_MAX_MS: Final = 12 * 60_000
"""Extra delay (ms) of an incident, on one segment."""

DWELL_MIN_MS: Final = 12_000
DWELL_MAX_MS: Final = 40_000
"""Dwell per served stop (ms) from arrival to departure."""

HUB_DWELL_MIN_MS: Final = 60_000
HUB_DWELL_MAX_MS: Final = 240_000
"""Dwell at a hub in the middle of a journey (ms): timed transfers hold buses for minutes."""

TERMINUS_STAND_MIN_MS: Final = 60_000
TERMINUS_STAND_MAX_MS: Final = 360_000
"""A bus opens its doors at the first stop this long before departure (ms); riders sit in
it meanwhile, next to the other buses standing there."""

DOOR_DELAY_MIN_MS: Final = 1_500
DOOR_DELAY_MAX_MS: Final = 4_000
"""Doors open this long after the arrival and close this long before departure (ms)."""

PASS_THROUGH_PROB: Final = 0.8
"""Chance that a bus runs through a stop where nobody gets on or off (request stops);
otherwise the driver stops anyway (timing point, habit)."""

PASS_THROUGH_DWELL_MS: Final = 3_000
"""Time (ms) between the arrival and departure events when a bus runs through a stop."""

MIN_LAYOVER_MS: Final = 300_000
"""Minimum recovery time at a terminus (5 min, as in most German rural timetables)."""

RUN_TIME_SLACK: Final = 0.15
"""Extra share of the nominal run time planned into the cycle to absorb delays."""

HEADWAY_ROUNDING_MIN: Final = 5
"""Derived headways are rounded up to a multiple of this (clock-face timetables)."""

CONVOY_GAP_MIN_S: Final = 4.0
CONVOY_GAP_MAX_S: Final = 25.0
"""A reinforcement bus (Verstärker) follows its leader this many seconds behind."""

CONVOY_PEAK_WINDOW: Final = ((6 * 60 + 30, 8 * 60 + 15), (12 * 60 + 45, 14 * 60))
"""Local minutes in which reinforcement buses follow regular journeys (school runs)."""

POSITION_PERIOD_MS: Final = 10_000
"""A moving bus reports its position every 10 s."""

GNSS_SIGMA_M: Final = 4.0
"""GNSS position noise (m, 1σ per axis) of a roof antenna in open sky."""

GNSS_OUTLIER_PROB: Final = 0.02
GNSS_OUTLIER_M: Final = 45.0
"""Share of fixes thrown off by multipath between buildings, and their typical error (m)."""

GNSS_DROPOUT_PROB: Final = 0.01
"""Share of 10 s position reports missing (no fix under a bridge, in a cutting)."""

FLEET_NUMBER_MIN: Final = 1000
FLEET_NUMBER_MAX: Final = 9000
"""Range of the 4-digit fleet numbers in vehicle ids like ``RLG-4711``."""

BUS_HALF_LENGTH_M: Final = 6.0
"""Half a 12 m solo bus: the receiver sits mid-bus, this far from either end."""

# --- population -------------------------------------------------------------------------

CHILD_SHARE_PUPIL: Final = 0.8
CHILD_SHARE_OTHER: Final = 0.05
"""Share of child fares among pupils (up to 14) and among everybody else."""

PATTERN_WEIGHTS: Final = (
    ("commuter", 0.30),
    ("pupil", 0.28),
    ("shopper", 0.17),
    ("leisure", 0.12),
    ("occasional", 0.13),
)
"""Daily patterns of app users on rural buses: school and work trips dominate (assumed from
the VRR/NWL passenger mix: about half of rural bus trips are school trips)."""

TRANSFER_PROB: Final = 0.30
"""Chance that a passenger's destination lies on another line, reached via a hub."""

ONE_STOP_HOP_PROB: Final = 0.06
"""Chance that a leg is a one-stop hop (a steep hill, rain, heavy shopping)."""

RETURN_PROB: Final = {
    "commuter": 0.95,
    "pupil": 0.97,
    "shopper": 0.9,
    "leisure": 0.75,
    "occasional": 0.45,
}
"""Chance a passenger of each pattern rides back the same day."""

SECOND_OUTING_PROB: Final = 0.12
"""Chance of a second round trip in the afternoon or evening (sports club, errands)."""

OUT_TIME_MIN: Final = {
    "commuter": (7 * 60 + 5, 45),
    "pupil": (7 * 60 + 15, 12),
    "shopper": (9 * 60 + 45, 60),
    "leisure": (13 * 60 + 30, 120),
    "occasional": (11 * 60, 200),
}
"""(mean, σ) of the time (local minutes) a pattern reaches its first stop."""

STAY_MIN: Final = {
    "commuter": (8 * 60 + 30, 60),
    "pupil": (6 * 60, 70),
    "shopper": (110, 45),
    "leisure": (180, 70),
    "occasional": (150, 90),
}
"""(mean, σ) minutes spent at the destination before the return trip."""

MIN_STAY_MS: Final = 15 * 60_000
"""A passenger stays at least 15 min at a destination before the next trip."""

MIN_TRANSFER_MS: Final = 60_000
"""Walking from one bus to another at a hub takes at least a minute."""

MAX_WAIT_MS: Final = 90 * 60_000
"""A passenger who would wait longer than this for the next bus gives up on the trip."""

BOARD_MARGIN_MS: Final = 3_000
"""A passenger must be at the stop this long before the doors close to board (ms)."""

SAME_STOP_CHOICE_MS: Final = 240_000
"""Calls of the same line and direction whose doors close within this time of the first
possible one are alternatives (a reinforcement bus right behind): the rider picks one."""

PHONE_MODELS: Final = (
    ("iphone-15", -8, 0.0, 0.20),
    ("iphone-se", -12, -2.0, 0.07),
    ("pixel-8", -7, 1.0, 0.09),
    ("galaxy-s23", -9, 0.0, 0.16),
    ("galaxy-a14", -14, -3.0, 0.15),
    ("redmi-note-12", -4, 3.0, 0.13),
    ("moto-g54", -3, 5.0, 0.08),
    ("nokia-g22", -17, -6.0, 0.07),
    ("fairphone-5", 0, 4.0, 0.05),
)
"""(model, advertised tx power at 1 m in dBm, bias of the real power against the advertised
value in dB, market share): advertised powers span -17..0 dBm, the real ones ±10 dB around
-8, and some models mis-calibrate by several dB (assumed from published BLE measurements)."""

TX_CALIBRATION_SIGMA_DB: Final = 2.0
"""Unit-to-unit spread of a phone's real radiated power within its model (dB, 1σ)."""

ADV_INTERVALS_MS: Final = (
    (100, 0.12),
    (152, 0.10),
    (211, 0.14),
    (250, 0.20),
    (319, 0.14),
    (546, 0.10),
    (760, 0.08),
    (1000, 0.12),
)
"""(advertising interval ms, share): Android's low-latency/balanced/low-power modes (100,
250, 1000 ms) and iOS's background-throttled intervals (152.5–1022.5 ms, rounded)."""

CARRY_WEIGHTS: Final = (("hand", 0.22), ("pocket", 0.43), ("bag", 0.35))
"""Where riders carry the phone; it sets the extra body/bag attenuation."""

CLOCK_SKEW_SIGMA_MS: Final = 15_000
CLOCK_SKEW_MAX_MS: Final = 60_000
"""Phone clock error (ms): mostly NTP-synced, clipped to the contract's ±60 s."""

PHONE_OUTAGE_PROB: Final = 0.04
"""Chance that a passenger's phone stops advertising during one of the day's rides: the
OS kills the app, the user turns Bluetooth off, or the battery dies (assumed)."""

IPHONE_SHARE: Final = 0.4
"""Share of app users on an iPhone in new scenario runs (``bibo simulate --iphone-share``):
iOS lets an app advertise no service data, so these phones hear the bus beacon instead
(docs/contracts.md, Bus beacon). Germany's smartphone market share of iOS, about a third
to 40 % (assumed)."""

BACKGROUND_LOCATION_SHARE: Final = 0.7
"""Of the iPhones, the share whose user granted "always" location: the app ranges beacons
whenever the phone is in the beacon region; the others range only for a burst after each
region entry (assumed)."""

BEACON_TX_DBM: Final = -8.0
"""What the bus beacon radiates (dBm at 1 m): a typical phone's (the backend reads a
phone's beacon RSSI as it reads a phone without tx, ``backend.const.DEFAULT_TX_POWER_DBM``)."""

REGION_ENTER_DELAY_MS: Final = (1_000, 10_000)
"""iOS reports a region entry this long after the first beacon of the region was heard."""

REGION_EXIT_SILENCE_MS: Final = (25_000, 40_000)
"""iOS reports a region exit this long after the last beacon was heard (about 30 s)."""

RANGING_BURST_MS: Final = 10_000
"""Without background location, iOS lets the woken app range this long after an entry."""

ACTIVITY_LAG_MS: Final = (5_000, 30_000)
"""Core Motion reports a change of activity this long after it happened."""

PHONE_UPLOAD_PERIOD_MS: Final = 10 * 60_000
"""A simulated iPhone seals and uploads what it heard at most this often (phone clock)."""

PHONE_LIVE_UPLOAD_MS: Final = 20_000
"""A simulated iPhone that ranges in the background uploads what it heard every 20 s while
it hears a bus (the app runs anyway): the rider's be-in and inspection ticket are due within
a minute of the bus leaving the boarding stop (p95 ≤ 60 s), and an upload a minute spent
half of that waiting. Three small uploads a minute while riding; a product choice of the
phone app, not a measured figure."""

PHONE_EXIT_UPLOAD_MS: Final = 5_000
"""A simulated iPhone also uploads this long after each region exit: iOS wakes the app
for the exit event, and the ride it ends should not wait for the next period (assumed)."""

PHONE_OUTAGE_MIN_MS: Final = 10 * 60_000
"""An outage lasts at least this long (ms); half of them last the rest of the day."""

SEATED_DISTANCE_MIN_M: Final = 1.0
SEATED_DISTANCE_MAX_M: Final = 7.5
"""A rider's distance to the mid-bus receiver (m): anywhere in a 12 m solo bus."""

WAIT_DISTANCE_MIN_M: Final = 2.0
WAIT_DISTANCE_MAX_M: Final = 12.0
"""A passenger waiting to board stands this far from the receiver (m)."""

APPROACH_MS: Final = 8_000
"""A boarding passenger walks from the waiting spot to the door in the last 8 s."""

DOOR_DISTANCE_M: Final = 2.5
"""Distance (m) from a door to the mid-bus receiver."""

WALK_SPEED_MPS: Final = 1.3
"""Walking speed (m/s) of alighted passengers and passers-by."""

LEAVE_TAIL_MS: Final = 5_000
"""An alighted passenger stays audible until this long after the bus departs (ms)."""

# --- bystanders -------------------------------------------------------------------------

BYSTANDER_KINDS_MIXED: Final = (
    ("stop_wait", 0.30),
    ("walk_past", 0.20),
    ("alongside_car", 0.17),
    ("alongside_bike", 0.10),
    ("trailing_car", 0.08),
    ("hub_wait", 0.15),
)
"""Bystander persons by what they do near buses on an ordinary weekday (assumed)."""

BYSTANDER_EPISODES_MAX: Final = 3
"""A bystander shows up near buses 1..3 times a day."""

STOP_WAIT_MIN_MS: Final = 3 * 60_000
STOP_WAIT_MAX_MS: Final = 25 * 60_000
"""How long a bystander lingers at a stop (waiting for a lift, a friend, at the kiosk)."""

STOP_WAIT_DISTANCE_MIN_M: Final = 2.0
STOP_WAIT_DISTANCE_MAX_M: Final = 18.0
"""Distance of a lingering bystander to the receiver (m)."""

WALK_PAST_CLOSEST_MIN_M: Final = 1.5
WALK_PAST_CLOSEST_MAX_M: Final = 8.0
"""Closest approach (m) of a passer-by to the receiver."""

WALK_PAST_HALF_MS: Final = 30_000
"""A passer-by is simulated from 30 s before to 30 s after the closest approach."""

ALONGSIDE_MIN_MS: Final = 15_000
ALONGSIDE_MAX_MS: Final = 90_000
"""How long a car or cyclist keeps pace with the bus at a light or in slow traffic (ms)."""

ALONGSIDE_LATERAL_MIN_M: Final = 1.5
ALONGSIDE_LATERAL_MAX_M: Final = 4.0
"""Lateral distance (m) of a car or cyclist alongside to the receiver."""

ALONGSIDE_DRIFT_M: Final = 10.0
"""A car alongside drifts up to this far (m) along the bus over the episode."""

TRAILING_STOPS_MIN: Final = 2
TRAILING_STOPS_MAX: Final = 5
"""A car trails the bus through this many stops (it cannot overtake on a country road)."""

TRAILING_GAP_MIN_M: Final = 6.0
TRAILING_GAP_MAX_M: Final = 35.0
"""Bumper gap (m) of a trailing car; it closes to the minimum while the bus stands."""

HUB_WAIT_MIN_MS: Final = 4 * 60_000
HUB_WAIT_MAX_MS: Final = 20 * 60_000
"""How long someone waits at a hub for their (other) bus (ms)."""

PROXIMITY_M: Final = 50.0
"""Two buses closer than this (m) may hear each other's riders (beyond it, through two bus
bodies, a phone arrives below -100 dBm even with the doors open)."""

PROXIMITY_MIN_MS: Final = 20_000
"""Buses near each other for less than this (ms) are passing in traffic with their doors
shut: -100 dBm or less through two bodies, so no episode (it would only cost time)."""

PROXIMITY_STEP_MS: Final = 4_000
"""Time step (ms) of the bus-to-bus proximity scan and of its sampled distance paths."""

BAY_SEPARATION_MIN_M: Final = 4.0
BAY_SEPARATION_MAX_M: Final = 100.0
"""Two buses at the same place are this far apart (m), fixed per pair: side by side in
neighbouring bays up to opposite ends of a bus station (Soest's is ~200 m long)."""

QUEUE_SEPARATION_MIN_M: Final = 12.0
QUEUE_SEPARATION_MAX_M: Final = 20.0
"""A reinforcement bus queues right behind its leader at stops: receiver to receiver (m)."""

PATH_SAMPLE_MS: Final = 2_000
"""Distance paths of moving bystanders are sampled this often (ms) and interpolated."""

# --- radio ------------------------------------------------------------------------------

REFERENCE_LOSS_1M_DB: Final = 40.0
"""Free-space path loss at 1 m and 2.44 GHz: 20·log10(4π·1 m / 0.123 m) ≈ 40 dB."""

ANTENNA_LOSS_DB: Final = 6.0
"""Phone + receiver antenna inefficiency (dB): puts a hand-held phone at ~-54 dBm at 1 m."""

PATH_LOSS_EXPONENT_INSIDE: Final = 1.8
"""Inside the metal bus body multipath guides the signal: exponent below free space."""

PATH_LOSS_EXPONENT_OUTSIDE: Final = 2.4
"""Outdoors at a stop, with people and street furniture: a bit above free space."""

MIN_DISTANCE_M: Final = 0.5
"""Distances below this are clamped; the log-distance model is invalid near field."""

BODY_LOSS_DOORS_CLOSED_DB: Final = 9.0
BODY_LOSS_DOORS_CLOSED_SIGMA_DB: Final = 2.5
"""Loss (dB) through the closed bus body for someone outside: mostly glass, so moderate
(assumed; beacon BiBo pilots report phones heard from outside as their main problem)."""

BODY_LOSS_DOORS_OPEN_DB: Final = 3.0
BODY_LOSS_DOORS_OPEN_SIGMA_DB: Final = 1.5
"""Loss (dB) for someone outside while the doors are open (partial line of sight)."""

CAR_BODY_LOSS_DB: Final = 6.0
"""Loss (dB) through a car's body and windscreen for a phone in the car."""

CARRY_LOSS_DB: Final = {"hand": 0.0, "pocket": 5.0, "bag": 9.0, "holder": 0.0}
CARRY_LOSS_SIGMA_DB: Final = {"hand": 1.0, "pocket": 2.0, "bag": 3.0, "holder": 1.0}
"""Extra attenuation (dB, mean and 1σ per episode) by carry position: the holder's body and
the bag absorb 2.4 GHz; a phone in a car holder sees none."""

CROWD_LOSS_DB_PER_PERSON: Final = 0.25
CROWD_LOSS_MAX_DB: Final = 12.0
"""Extra loss (dB) per other person on board, scaled by the share of the bus between the
phone and the receiver (water-filled bodies absorb 2.4 GHz), capped."""

SHADOWING_SIGMA_INSIDE_DB: Final = 4.0
SHADOWING_SIGMA_OUTSIDE_DB: Final = 5.0
"""Log-normal shadowing (dB, 1σ): posture, orientation, people moving between."""

SHADOWING_TAU_STILL_S: Final = 30.0
SHADOWING_TAU_MOVING_S: Final = 6.0
"""Decorrelation time (s) of the shadowing: slow for someone sitting or standing, fast for
someone walking or driving relative to the bus (Gudmundson's exponential model)."""

RICIAN_K_INSIDE: Final = 3.0
RICIAN_K_OUTSIDE: Final = 0.5
"""Rician K-factor (linear) of per-packet fast fading: a strong direct path inside the bus,
nearly Rayleigh outside and between vehicles."""

SENSITIVITY_DBM: Final = -96
"""Receiver sensitivity (dBm) of a typical USB BLE adapter at 1 Mbit/s."""

PACKET_LOSS_RAMP_DB: Final = 6.0
"""Decoding probability ramps from 0 to full over the last 6 dB above sensitivity."""

PACKET_LOSS_BASE: Final = 0.04
"""Share of adverts lost even at strong signal (Wi-Fi on the same band, CRC errors)."""

ADV_AIRTIME_MS: Final = 0.376
"""Air time of one 31-byte legacy advertising packet at 1 Mbit/s (ms)."""

BACKGROUND_ADVERTISERS: Final = 12
"""Other BLE devices near a bus (earbuds, watches, trackers, cars) adding collisions."""

BACKGROUND_INTERVAL_MS: Final = 300.0
"""Typical advertising interval of those devices (ms)."""

SCAN_INTERVAL_MS: Final = 60
SCAN_WINDOW_MS: Final = 30
"""BlueZ-like LE scan parameters (ms): listening 30 ms of every 60 ms (assumed; the
kernel's discovery and passive-scan defaults lie between 11.25/11.25 and 60/30)."""

SCAN_RESTART_PERIOD_MS: Final = 10_240
SCAN_RESTART_GAP_MS: Final = 640
"""BlueZ restarts LE discovery every 10.24 s (DISCOV_LE_TIMEOUT); the restart, the flush
of the duplicate filter and coexistence with the controller's other work leave a gap
(assumed 640 ms) in which nothing is heard."""

SCAN_STALL_PROB: Final = 0.01
SCAN_STALL_MS: Final = 4_000
"""Chance per restart that the adapter stalls (USB hiccup, firmware) and how long (ms)."""

ADV_DELAY_MAX_MS: Final = 10
"""BLE adds a random 0–10 ms advDelay to every advertising event (Core spec 4.4.2.2.1)."""

RSSI_MIN_DBM: Final = -127
RSSI_MAX_DBM: Final = 20
"""Range an RSSI can take on the wire (docs/contracts.md, Vehicle upload)."""

# --- recording, replay and evaluation ----------------------------------------------------

RECORDING_VERSION: Final = 1
"""Version of a recorded scenario directory (scenario.json, vehicles.json, batches)."""

GROUND_TRUTH_VERSION: Final = 2
"""Version of the persisted ground-truth JSON (docs/style.md, Versioned persisted
shapes); 2 added patterns, legs, phone outages and encounter end times."""

EVALUATION_VERSION: Final = 1
"""Version of the evaluation JSON report."""

DEVICES_FILE_VERSION: Final = 1
"""Version of ``devices.json`` (the backend's ``bibo devices import`` format)."""

SIM_TICK_MS: Final = 1_000
"""Data time between agent ticks when recording: the agent's production tick period."""

REPLAY_CONCURRENCY: Final = 32
"""Vehicles replayed at once; each vehicle's batches go in order, one at a time. The
backend lets one vehicle upload ~2 batches/s, so throughput comes from parallel vehicles."""

REPLAY_RETRY_WAIT_S: Final = 0.5
REPLAY_RETRY_WAIT_MAX_S: Final = 5.0
REPLAY_MAX_ATTEMPTS: Final = 60
"""A batch the backend answers with 429 or 5xx is sent again after 0.5 s, doubling up to
5 s, at most 60 times (the per-vehicle rate limit answers 429). While the backend does not
answer at all, it is asked again with the same waits for as long as it takes: that is no
fault of the batch."""

REPLAY_CONNECT_TIMEOUT_S: Final = 5.0
"""How long replay waits for the backend to accept a connection: a backend answers within
milliseconds, and a wrong or unreachable ``--backend`` must be reported in seconds (the
read time-out stays long, a busy backend may take a while to answer a batch)."""

REPLAY_READ_TIMEOUT_S: Final = 60.0
"""How long replay waits for the answer to one batch (a backend busy reconciling is slow)."""

REPLAY_NOTICE_INTERVAL_S: Final = 10.0
"""While the backend cannot be reached, replay keeps trying (it may be starting or
restarting) and says so on stderr at the first failed attempt, then at most every 10 s:
visibly alive without flooding a log."""

REPLAY_UPLOADS_PER_S: Final = 10_000
"""Upload rate per vehicle that a simulation's own backend allows and the demo's agents use
(``BIBO_VEHICLE_UPLOADS_PER_S``, ``max_batches_per_s``): a simulated day is uploaded in
minutes, not a day; the limit protects a live backend from a runaway unit."""

LIBRARY_UPLOAD_INTERVAL_MS: Final = 60_000
"""The library's buses seal a batch every 60 s (the production agent: 10 s): the same
windows and events in 6x fewer requests, so the library replays in minutes (~65 batches/s
into one backend process; a live backend also admits only ~2 batches/s per vehicle). The
be-out latency is still reported for the production interval (see simulator.evaluation)."""

BEOUT_ABSENCE_MS: Final = 20_000
"""Evidence of a be-out: the departure from the alighting stop plus 20 s without the phone
(a bus is ~100 m away by then), as uploaded by the bus."""

AFTER_SERVICE_MS: Final = 180_000
"""The onboard unit stays on for the run to the depot after the bus's last journey: three
more minutes of heartbeat uploads, which tell the backend that no rider was heard after
the last stop (so the last journey's be-outs close like any other)."""

BEOUT_GOAL_S: Final = 120.0
"""A rider's be-out must be known within 120 s of the bus leaving the alighting stop."""

NAIVE_RSSI_THRESHOLD_DBM: Final = -94
NAIVE_MIN_WINDOWS: Final = 130
"""The naive baseline: a device is on board for a journey if heard at or above -94 dBm in
at least 130 one-second windows of it. The best F1 (0.959) of a grid search (thresholds
-100..-60 dBm, counts 5..200) on a full clean day (the ``clean`` scenario's lines and
bystanders, 300 passengers, 06:00-20:00, 404 rides): tuned where a naive engineer would
tune. Any threshold above ~-92 dBm only loses riders carrying phones in bags."""

SERVER_START_TIMEOUT_S: Final = 30.0
"""How long to wait for ``bibo serve`` to answer before giving up with its log."""

# --- randomized worlds (issue 12) ---------------------------------------------------------
# ``World.draw(seed)`` draws every radio and fleet parameter uniformly from these ranges
# (low, high); ``World.default()`` is the single model above. The ranges are wide on purpose:
# a world is a deployment bibo was never tuned on, not a best guess of one
# (docs/architecture.md, Reconciliation).

WORLD_VERSION: Final = 1
"""Version of ``world.json`` in a recording (docs/style.md, Versioned persisted shapes)."""

WORLD_TX_CONVENTIONS: Final = ("model-table", "rssi-1m", "power-level")
"""What phones put in the payload's tx byte (docs/contracts.md, BLE payload): today's per-model
table (-17..0 dBm), a calibrated RSSI at 1 m (iBeacon-style, around -60 dBm) or the radiated power
level (Android ``AdvertisingSetParameters`` levels, -20..+5 dBm)."""

WORLD_TX_ABSENT_SHARE: Final = (0.0, 1.0)
"""Share of phones that cannot report tx (uploaded ``tx: null``): from all to none
(docs/contracts.md, BLE payload)."""

WORLD_TX_UNKNOWN_7F_SHARE: Final = (0.0, 1.0)
"""Of the phones without tx, the share sending 0x7F ("unknown", docs/contracts.md, BLE
payload) instead of -128; the onboard unit uploads both as ``tx: null``
(``onboard.const.TX_POWER_MAX_DBM``)."""

WORLD_RSSI_1M_ERROR_DB: Final = (-8.0, 8.0)
"""Per-model error of a calibrated-at-1-m tx report: factory calibration is per model and
often off by several dB (published iBeacon measured-power surveys)."""

WORLD_POWER_LEVEL_DBM: Final = (-20, 5)
"""Per-model radiated power level reported under the power-level convention (Android's
ULTRA_LOW -21 .. HIGH +1, BLE 5 class-2 up to +4; docs/contracts.md, BLE payload:
"around -20 to +5 dBm")."""

WORLD_MODEL_OFFSET_DB: Final = (-10.0, 10.0)
"""Per-model offset of what a phone really radiates, on top of the model table: models
differ by ±10 dB in what they radiate (docs/contracts.md, BLE payload)."""

WORLD_UNIT_SPREAD_DB: Final = (0.0, 6.0)
"""Half-width (dB) of an extra uniform per-phone offset within a model (ageing, case,
antenna damage); the model table's 2 dB σ stays underneath."""

WORLD_RECEIVER_GAIN_SPREAD_DB: Final = (0.0, 10.0)
"""Half-width (dB) of the uniform per-bus receiver gain: adapters, antennas and their
mounting differ by several dB, up to ±10 dB (issue 12)."""

WORLD_EXPONENT_INSIDE: Final = (1.5, 2.4)
"""Path-loss exponent inside a bus: waveguide-like metal body (1.5) to a crowded one (2.4)
(in-vehicle 2.4 GHz measurements report 1.5–2.2)."""

WORLD_EXPONENT_OUTSIDE: Final = (2.0, 3.5)
"""Path-loss exponent outdoors: free space (2.0) to a cluttered street (3.5, urban
micro-cell measurements)."""

WORLD_CARRY_POCKET_DB: Final = (2.0, 10.0)
WORLD_CARRY_BAG_DB: Final = (4.0, 16.0)
"""Mean body/bag loss (dB) of a phone in a pocket and in a bag: body shadowing at 2.4 GHz
measures 3–10 dB, a bag with books or a laptop up to ~15 dB (assumed)."""

WORLD_BODY_CLOSED_DB: Final = (5.0, 20.0)
WORLD_BODY_OPEN_DB: Final = (1.0, 6.0)
"""Mean loss (dB) through a bus body with closed doors (plain to metallised glass) and
with open doors (partial line of sight)."""

WORLD_CAR_BODY_DB: Final = (3.0, 12.0)
"""Mean loss (dB) through a car body (soft-top to athermic glass)."""

WORLD_CROWD_DB_PER_PERSON: Final = (0.1, 0.6)
"""Crowd loss (dB per other person on board, see CROWD_LOSS_DB_PER_PERSON): a person
absorbs 1–3 dB in line of sight; scaled by how many stand in the way (assumed)."""

WORLD_PACKET_LOSS_BASE: Final = (0.01, 0.30)
"""Radio miss rate at strong signal: a quiet band (1 %) to busy Wi-Fi coexistence and a
cheap adapter dropping packets (30 %)."""

WORLD_SCAN_INTERVAL_MS: Final = (30, 160)
WORLD_SCAN_DUTY: Final = (0.1, 1.0)
"""LE scan interval (ms) and duty cycle (window/interval) of a bus's scanner: low-power
scanning (10 %) to continuous discovery (100 %, BlueZ's 11.25/11.25 ms)."""

WORLD_ADV_INTERVAL_SCALE: Final = (0.5, 3.0)
"""Factor on every phone's advertising interval: newer OS versions throttle background
advertising harder (×3) or apps request low latency (×0.5)."""

ADV_INTERVAL_MIN_MS: Final = 20
ADV_INTERVAL_MAX_MS: Final = 10_240
"""Legal range of a legacy advertising interval (BLE Core spec, 20 ms .. 10.24 s)."""

WORLD_NO_DOORS_SHARE: Final = (0.0, 1.0)
"""Share of buses whose onboard computer reports no door events (docs/architecture.md,
Reconciliation): none to all."""

WORLD_STOP_EVENT_JITTER_MS: Final = (0, 15_000)
"""Half-width (ms) of the uniform shift of a call's arrival and departure events: stop
events come early or late by up to 15 s (issue 12)."""

WORLD_STOP_EVENT_MISSING_SHARE: Final = (0.0, 0.3)
"""Share of calls whose arrival and departure events never arrive (docs/architecture.md,
Reconciliation)."""

WORLD_JOURNEY_EVENT_MISSING_SHARE: Final = (0.0, 0.3)
"""Share of journeys without their journey event (docs/architecture.md, Reconciliation)."""

WORLD_GNSS_SIGMA_M: Final = (2.0, 15.0)
WORLD_GNSS_OUTLIER_PROB: Final = (0.0, 0.10)
WORLD_GNSS_DROPOUT_PROB: Final = (0.0, 0.10)
"""GNSS noise (m, 1σ per axis), outlier and dropout shares: a roof antenna in open sky to a
cheap in-cab receiver in town (urban canyon)."""

# --- scoring over worlds (bibo evaluate --worlds, issue 12) ---------------------------------

TRAINING_WORLDS: Final[tuple[int | None, ...]] = (None, *range(1, 11))
"""The named training set every fitted reconciliation constant is fitted on (``bibo
calibrate``): the simulator's default world (None: the model bibo was first built on; it
must keep working there) and the drawn worlds of seeds 1-10. No test world is among them."""

TEST_WORLDS: Final = tuple(range(1001, 1021))
"""The named test set: 20 world seeds no fit ever sees, scored beside the training worlds."""

CI_WORLDS: Final = (2001, 2002, 2003)
"""Worlds of the test suite's floors (tests/simulator/test_world_floors.py): neither training
nor test set, so the floors are not met by fitting on them."""

WORKER_PASS_S: Final = 5.0
"""How often the deployment the latency is modelled on reconciles (its workers' pass; the
backend's ``RECONCILE_INTERVAL_S``, which a test holds this to): a be-in or be-out the
data allows shows at most one pass later."""

LATENCY_HORIZON_S: Final = 180.0
"""How long after a departure the paced replay looks for the be-in or be-out (beyond it a
ride counts as not shown: infinite latency)."""

GOAL_WORLD_F1: Final = 0.99
GOAL_MEDIAN_F1: Final = 0.995
GOAL_BYSTANDERS_PER_1000: Final = 2.0
GOAL_EXACT_STOPS: Final = 0.98
GOAL_BEIN_P95_S: Final = 60.0
GOAL_BEOUT_P99_S: Final = 120.0
GOAL_FLIP_FLOPS: Final = 0.005
"""Issue 12's goals for every test world: F1 (each, and the median), bystanders charged per
1,000 encounters, exact boarding and alighting stops, be-in p95 after the bus leaves the
boarding stop, be-out p99 after it leaves the alighting stop, flip-flops per closed trip."""

GOAL_ABLATION_F1: Final = 0.005
"""An ablation (``ABLATIONS``) keeps F1 within this of the world it takes something from."""

ABLATIONS: Final[tuple[tuple[str, tuple[tuple[str, float], ...]], ...]] = (
    ("no phone advertises tx", (("tx_absent_share", 1.0),)),
    ("no bus reports doors", (("no_doors_share", 1.0),)),
    ("receiver gains spread +-10 dB", (("receiver_gain_spread_db", 10.0),)),
)
"""The default world with one thing taken away (``bibo evaluate --ablations``): the world
parameters (``simulator.world.World`` fields) each one sets."""

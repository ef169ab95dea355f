"""BLE radio model: what one bus receiver hears of one phone.

Log-distance path loss; losses from the carry position, the bus body (depending on the
receiving bus's doors), a second bus body or a car body, and the crowd on board;
log-normal shadowing correlated in time (first-order Gauss–Markov, Gudmundson);
per-packet Rician fast fading; a BlueZ-like scanner that listens in windows with gaps;
collisions growing with the number of advertisers; the receiver's sensitivity.

Everything is vectorised over adverts (numpy arrays); randomness comes from an injected
``numpy.random.Generator`` so a seed reproduces every RSSI.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from simulator.const import (
    ADV_AIRTIME_MS,
    ANTENNA_LOSS_DB,
    BACKGROUND_ADVERTISERS,
    BACKGROUND_INTERVAL_MS,
    BODY_LOSS_DOORS_CLOSED_DB,
    BODY_LOSS_DOORS_CLOSED_SIGMA_DB,
    BODY_LOSS_DOORS_OPEN_DB,
    BODY_LOSS_DOORS_OPEN_SIGMA_DB,
    BUS_HALF_LENGTH_M,
    CAR_BODY_LOSS_DB,
    CARRY_LOSS_DB,
    CARRY_LOSS_SIGMA_DB,
    CROWD_LOSS_DB_PER_PERSON,
    CROWD_LOSS_MAX_DB,
    MIN_DISTANCE_M,
    PACKET_LOSS_BASE,
    PACKET_LOSS_RAMP_DB,
    PATH_LOSS_EXPONENT_INSIDE,
    PATH_LOSS_EXPONENT_OUTSIDE,
    REFERENCE_LOSS_1M_DB,
    RICIAN_K_INSIDE,
    RICIAN_K_OUTSIDE,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    SCAN_INTERVAL_MS,
    SCAN_RESTART_GAP_MS,
    SCAN_RESTART_PERIOD_MS,
    SCAN_STALL_MS,
    SCAN_STALL_PROB,
    SCAN_WINDOW_MS,
    SENSITIVITY_DBM,
    SHADOWING_SIGMA_INSIDE_DB,
    SHADOWING_SIGMA_OUTSIDE_DB,
    SHADOWING_TAU_MOVING_S,
    SHADOWING_TAU_STILL_S,
)
from simulator.world import DEFAULT_WORLD, World

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Carry(enum.StrEnum):
    """Where the phone is carried; sets the extra attenuation (CARRY_LOSS_DB)."""

    HAND = "hand"
    POCKET = "pocket"
    BAG = "bag"
    HOLDER = "holder"
    """In a car's phone holder (drivers): no body loss, but the car body."""


class Placement(enum.StrEnum):
    """Where the phone is relative to the receiving bus."""

    INSIDE = "inside"
    """In this bus: no body loss, bus-interior path-loss exponent, crowd loss."""
    OUTSIDE = "outside"
    """Outside this bus: body loss depends on whether its doors are open."""
    OTHER_BUS = "other_bus"
    """Inside another bus nearby: this bus's body and the other one's."""
    IN_CAR = "in_car"
    """In a car next to or behind this bus: this bus's body and the car's."""


@dataclass(frozen=True, slots=True)
class Link:
    """The per-episode draw of one phone-to-receiver link (dB values are losses).

    ``body_closed_db``/``body_open_db`` apply to the receiving bus's doors, ``other_*``
    to the other bus's (OTHER_BUS), ``car_db`` to a car body; ``shadow_sigma_db`` and
    ``shadow_tau_s`` shape the correlated shadowing, ``rician_k`` the fading.
    """

    exponent: float
    carry_db: float
    body_closed_db: float
    body_open_db: float
    other_closed_db: float
    other_open_db: float
    car_db: float
    shadow_sigma_db: float
    shadow_tau_s: float
    rician_k: float


def carry_loss_db(carry: Carry) -> float:
    """Mean extra attenuation (dB) of a carry position."""
    return CARRY_LOSS_DB[carry.value]


def mean_link(placement: Placement, carry: Carry, moving: bool = False) -> Link:
    """The link with every random loss at its mean (for sanity checks and plots)."""
    inside = placement is Placement.INSIDE
    return Link(
        exponent=PATH_LOSS_EXPONENT_INSIDE if inside else PATH_LOSS_EXPONENT_OUTSIDE,
        carry_db=carry_loss_db(carry),
        body_closed_db=0.0 if inside else BODY_LOSS_DOORS_CLOSED_DB,
        body_open_db=0.0 if inside else BODY_LOSS_DOORS_OPEN_DB,
        other_closed_db=BODY_LOSS_DOORS_CLOSED_DB if placement is Placement.OTHER_BUS else 0.0,
        other_open_db=BODY_LOSS_DOORS_OPEN_DB if placement is Placement.OTHER_BUS else 0.0,
        car_db=CAR_BODY_LOSS_DB if placement is Placement.IN_CAR else 0.0,
        shadow_sigma_db=SHADOWING_SIGMA_INSIDE_DB if inside else SHADOWING_SIGMA_OUTSIDE_DB,
        shadow_tau_s=SHADOWING_TAU_MOVING_S if moving else SHADOWING_TAU_STILL_S,
        rician_k=RICIAN_K_INSIDE if inside else RICIAN_K_OUTSIDE,
    )


def draw_link(rng: np.random.Generator, placement: Placement, carry: Carry, moving: bool) -> Link:
    """Draw one episode's losses around :func:`mean_link` (never negative)."""
    m = mean_link(placement, carry, moving)

    def around(mean: float, sigma: float) -> float:
        return max(0.0, mean + float(rng.normal(0.0, sigma))) if mean > 0 else 0.0

    outside = placement is not Placement.INSIDE
    closed_sigma, open_sigma = BODY_LOSS_DOORS_CLOSED_SIGMA_DB, BODY_LOSS_DOORS_OPEN_SIGMA_DB
    return Link(
        exponent=m.exponent,
        carry_db=around(m.carry_db, CARRY_LOSS_SIGMA_DB[carry.value]),
        body_closed_db=around(m.body_closed_db, closed_sigma) if outside else 0.0,
        body_open_db=around(m.body_open_db, open_sigma) if outside else 0.0,
        other_closed_db=around(m.other_closed_db, closed_sigma),
        other_open_db=around(m.other_open_db, open_sigma),
        car_db=around(m.car_db, 1.5),
        shadow_sigma_db=m.shadow_sigma_db,
        shadow_tau_s=m.shadow_tau_s,
        rician_k=m.rician_k,
    )


_PLACEMENT_ORDER: tuple[Placement, ...] = tuple(Placement)
_CARRY_ORDER: tuple[Carry, ...] = tuple(Carry)


def placement_code(placement: Placement) -> int:
    """Index of a placement in :func:`draw_links`' code arrays."""
    return _PLACEMENT_ORDER.index(placement)


def carry_code(carry: Carry) -> int:
    """Index of a carry position in :func:`draw_links`' code arrays."""
    return _CARRY_ORDER.index(carry)


def draw_links(
    rng: np.random.Generator,
    placement: npt.NDArray[np.int64],
    carry: npt.NDArray[np.int64],
    moving: BoolArray,
    world: World = DEFAULT_WORLD,
) -> dict[str, FloatArray]:
    """:func:`draw_link` for many episodes at once (codes from :func:`placement_code`
    and :func:`carry_code`); one array per :class:`Link` field. The mean losses and the
    path-loss exponents are the ``world``'s (the spreads stay the model's)."""
    n = placement.size
    inside = placement == placement_code(Placement.INSIDE)
    other = placement == placement_code(Placement.OTHER_BUS)
    car = placement == placement_code(Placement.IN_CAR)
    z = rng.normal(size=(6, n))
    carry_mean = {**CARRY_LOSS_DB, "pocket": world.carry_pocket_db, "bag": world.carry_bag_db}
    c_mean = np.array([carry_mean[c.value] for c in _CARRY_ORDER])[carry]
    c_sigma = np.array([CARRY_LOSS_SIGMA_DB[c.value] for c in _CARRY_ORDER])[carry]

    def around(mean: FloatArray | float, sigma: float | FloatArray, k: int) -> FloatArray:
        return np.asarray(np.where(np.asarray(mean) > 0, np.maximum(0.0, mean + sigma * z[k]), 0.0))

    closed = around(world.body_closed_db, BODY_LOSS_DOORS_CLOSED_SIGMA_DB, 1)
    opened = around(world.body_open_db, BODY_LOSS_DOORS_OPEN_SIGMA_DB, 2)
    return {
        "exponent": np.where(inside, world.exponent_inside, world.exponent_outside),
        "carry_db": around(c_mean, c_sigma, 0),
        "body_closed_db": np.where(inside, 0.0, closed),
        "body_open_db": np.where(inside, 0.0, opened),
        "other_closed_db": np.where(
            other, around(world.body_closed_db, BODY_LOSS_DOORS_CLOSED_SIGMA_DB, 3), 0.0
        ),
        "other_open_db": np.where(
            other, around(world.body_open_db, BODY_LOSS_DOORS_OPEN_SIGMA_DB, 4), 0.0
        ),
        "car_db": np.where(car, around(world.car_body_db, 1.5, 5), 0.0),
        "shadow_sigma_db": np.where(inside, SHADOWING_SIGMA_INSIDE_DB, SHADOWING_SIGMA_OUTSIDE_DB),
        "shadow_tau_s": np.where(moving, SHADOWING_TAU_MOVING_S, SHADOWING_TAU_STILL_S),
        "rician_k": np.where(inside, RICIAN_K_INSIDE, RICIAN_K_OUTSIDE),
    }


_FADING_POOL_SIZE = 1 << 16
_fading_pools: dict[float, FloatArray] = {}


def fading_pool_db(rng: np.random.Generator, k: FloatArray) -> FloatArray:
    """Rician fading (dB) per advert drawn from a fixed pool of 65,536 samples per K
    (built once from a constant seed): the same distribution as :func:`fading_db` at a
    fraction of the cost, which the region day needs."""
    out = np.empty(k.size, dtype=np.float64)
    idx = rng.integers(0, _FADING_POOL_SIZE, size=k.size)
    for value in np.unique(k):
        pool = _fading_pools.get(float(value))
        if pool is None:
            pool = fading_db(np.random.default_rng(0xF4D1), _FADING_POOL_SIZE, float(value))
            _fading_pools[float(value)] = pool
        m = k == value
        out[m] = pool[idx[m]]
    return out


def path_loss_db(distance_m: FloatArray | float, exponent: FloatArray | float) -> FloatArray:
    """Log-distance path loss (dB) incl. the antenna losses, at distances in metres
    (``exponent`` per distance or one for all)."""
    d = np.maximum(np.asarray(distance_m, dtype=np.float64), MIN_DISTANCE_M)
    return np.asarray(
        REFERENCE_LOSS_1M_DB + ANTENNA_LOSS_DB + 10.0 * exponent * np.log10(d), dtype=np.float64
    )


def crowd_loss_db(
    occupancy: FloatArray | float,
    distance_m: FloatArray | float,
    per_person_db: float = CROWD_LOSS_DB_PER_PERSON,
) -> FloatArray:
    """Loss (dB) from the other people on board between an inside phone and the receiver
    (``per_person_db`` per other person, a world parameter)."""
    others = np.maximum(np.asarray(occupancy, dtype=np.float64) - 1.0, 0.0)
    share = np.minimum(np.asarray(distance_m, dtype=np.float64) / BUS_HALF_LENGTH_M, 1.0)
    return np.asarray(
        np.minimum(per_person_db * others * share, CROWD_LOSS_MAX_DB), dtype=np.float64
    )


def link_rssi_dbm(
    tx_1m_dbm: float,
    distance_m: FloatArray,
    placement: Placement,
    link: Link,
    doors_open: BoolArray | bool,
    other_doors_open: BoolArray | bool = False,
    occupancy: FloatArray | float = 0.0,
) -> FloatArray:
    """Mean RSSI (dBm) before shadowing and fading, per advert.

    ``tx_1m_dbm`` is the phone's real radiated power; ``doors_open`` of the receiving bus
    and ``other_doors_open`` of the bus the phone is in (OTHER_BUS); ``occupancy`` the
    number of people on the receiving bus (crowd loss for INSIDE phones).
    """
    d = np.asarray(distance_m, dtype=np.float64)
    rssi = tx_1m_dbm - path_loss_db(d, link.exponent) - link.carry_db
    if placement is Placement.INSIDE:
        rssi = rssi - crowd_loss_db(occupancy, d)
    else:
        rssi = rssi - np.where(doors_open, link.body_open_db, link.body_closed_db)
        if placement is Placement.OTHER_BUS:
            rssi = rssi - np.where(other_doors_open, link.other_open_db, link.other_closed_db)
        elif placement is Placement.IN_CAR:
            rssi = rssi - link.car_db
    shape = np.broadcast_shapes(d.shape, np.shape(doors_open), np.shape(other_doors_open))
    return np.broadcast_to(rssi, shape).astype(np.float64)


def mean_rssi_dbm(
    tx_1m_dbm: float,
    distance_m: FloatArray | float,
    placement: Placement,
    doors_open: BoolArray | bool,
    carry: Carry,
) -> FloatArray:
    """Mean RSSI (dBm) with every random loss at its mean, on an empty bus."""
    d = np.atleast_1d(np.asarray(distance_m, dtype=np.float64))
    return link_rssi_dbm(tx_1m_dbm, d, placement, mean_link(placement, carry), doors_open)


def shadowing_db(
    rng: np.random.Generator, t_ms: IntArray, sigma_db: float, tau_s: float
) -> FloatArray:
    """Log-normal shadowing (dB) at ``t_ms``: a stationary Gauss–Markov process.

    Sampled on a 1 s grid (an AR(1) with correlation exp(-1 s / tau)) and read at each
    advert's second, so adverts close in time share their shadowing.
    """
    if t_ms.size == 0:
        return np.zeros(0, dtype=np.float64)
    t0 = int(t_ms.min())
    idx = (t_ms - t0) // 1000
    n = int(idx.max()) + 1
    rho = float(np.exp(-1.0 / tau_s))
    noise = rng.normal(0.0, 1.0, size=n)
    noise[0] *= 1.0 / np.sqrt(1.0 - rho * rho)  # start in the stationary distribution
    grid = lfilter([np.sqrt(1.0 - rho * rho)], [1.0, -rho], noise)
    return np.asarray(sigma_db * grid[idx], dtype=np.float64)


def fading_db(rng: np.random.Generator, n: int, k: float) -> FloatArray:
    """Per-packet Rician fading (dB, mean power 0 dB) with K-factor ``k`` (linear)."""
    los = np.sqrt(k / (k + 1.0))
    scatter = np.sqrt(1.0 / (2.0 * (k + 1.0)))
    re = los + scatter * rng.normal(size=n)
    im = scatter * rng.normal(size=n)
    return np.asarray(10.0 * np.log10(np.maximum(re * re + im * im, 1e-12)), dtype=np.float64)


def _unit_hash(x: IntArray, salt: int) -> FloatArray:
    """A deterministic uniform [0, 1) per integer (splitmix64), vectorised."""
    z = (x.astype(np.uint64) + np.uint64(salt & 0xFFFFFFFFFFFFFFFF)) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.asarray((z >> np.uint64(11)).astype(np.float64) / float(1 << 53), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Scanner:
    """When a bus's receiver listens: BlueZ-like scan windows, restarts and stalls.

    ``phase_ms`` offsets the scan interval, ``restart_phase_ms`` the discovery restarts;
    ``salt`` makes the rare adapter stalls differ between buses; ``interval_ms`` and
    ``window_ms`` are the LE scan parameters (a world's duty cycle).
    """

    phase_ms: int
    restart_phase_ms: int
    salt: int
    interval_ms: int = SCAN_INTERVAL_MS
    window_ms: int = SCAN_WINDOW_MS

    @classmethod
    def draw(cls, rng: np.random.Generator, world: World = DEFAULT_WORLD) -> Scanner:
        return cls(
            int(rng.integers(world.scan_interval_ms)),
            int(rng.integers(SCAN_RESTART_PERIOD_MS)),
            int(rng.integers(1 << 62)),
            world.scan_interval_ms,
            world.scan_window_ms,
        )

    def listening(self, t_ms: IntArray) -> BoolArray:
        """Whether the receiver listens at each instant (epoch ms)."""
        in_window = (t_ms + self.phase_ms) % self.interval_ms < self.window_ms
        shifted = t_ms + self.restart_phase_ms
        cycle = shifted // SCAN_RESTART_PERIOD_MS
        into = shifted % SCAN_RESTART_PERIOD_MS
        stalled = (_unit_hash(cycle, self.salt) < SCAN_STALL_PROB) & (into < SCAN_STALL_MS)
        return np.asarray(in_window & (into >= SCAN_RESTART_GAP_MS) & ~stalled, dtype=np.bool_)


def duty_cycle() -> float:
    """Long-run share of time the scanner listens (without stalls)."""
    return (SCAN_WINDOW_MS / SCAN_INTERVAL_MS) * (1 - SCAN_RESTART_GAP_MS / SCAN_RESTART_PERIOD_MS)


def collision_prob(advertisers: FloatArray | float) -> FloatArray:
    """Chance an advert collides with another (pure ALOHA), given the phones on board.

    Offered load G = (phones + background devices) × airtime / typical interval;
    P(collision) = 1 − exp(−2G).
    """
    n = np.asarray(advertisers, dtype=np.float64) + BACKGROUND_ADVERTISERS
    g = n * ADV_AIRTIME_MS / BACKGROUND_INTERVAL_MS
    return np.asarray(1.0 - np.exp(-2.0 * g), dtype=np.float64)


def reception_prob(
    rssi_dbm: FloatArray,
    advertisers: FloatArray | float = 0.0,
    base_loss: float = PACKET_LOSS_BASE,
) -> FloatArray:
    """Probability (0..1) that an advert at ``rssi_dbm`` is decoded while listening.

    Zero below sensitivity, a linear ramp over the last PACKET_LOSS_RAMP_DB, times the
    base loss (``base_loss``, a world's radio miss rate) and the collision loss.
    """
    ramp = np.clip((rssi_dbm - SENSITIVITY_DBM) / PACKET_LOSS_RAMP_DB, 0.0, 1.0)
    keep = (1.0 - base_loss) * (1.0 - collision_prob(advertisers))
    return np.asarray(ramp * keep, dtype=np.float64)


def quantise_rssi(rssi_dbm: FloatArray) -> IntArray:
    """Round to whole dBm as a receiver reports it, clipped to the wire range."""
    return np.clip(np.rint(rssi_dbm), RSSI_MIN_DBM, RSSI_MAX_DBM).astype(np.int64)

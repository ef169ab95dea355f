"""First BLE radio model: log-distance path loss, body/carry losses, shadowing, fading, loss.

Everything is vectorised over adverts (numpy arrays); randomness comes from an injected
``numpy.random.Generator`` so a seed reproduces every RSSI.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

from simulator.const import (
    ANTENNA_LOSS_DB,
    BODY_LOSS_DOORS_CLOSED_DB,
    BODY_LOSS_DOORS_OPEN_DB,
    CARRY_LOSS_DB,
    FADING_SIGMA_DB,
    MIN_DISTANCE_M,
    PACKET_LOSS_BASE,
    PACKET_LOSS_RAMP_DB,
    PATH_LOSS_EXPONENT_INSIDE,
    PATH_LOSS_EXPONENT_OUTSIDE,
    REFERENCE_LOSS_1M_DB,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    SCAN_HEAR_PROB,
    SENSITIVITY_DBM,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Carry(enum.StrEnum):
    """Where the phone is carried; sets the extra attenuation (CARRY_LOSS_DB)."""

    HAND = "hand"
    POCKET = "pocket"
    BAG = "bag"


class Placement(enum.StrEnum):
    """Where the phone is relative to the receiving bus."""

    INSIDE = "inside"
    """In this bus: no body loss, bus-interior path-loss exponent."""
    OUTSIDE = "outside"
    """Outside this bus: body loss depends on whether the doors are open."""
    OTHER_BUS = "other_bus"
    """Inside another bus nearby: two bus bodies, doors of this bus as for outside."""


def carry_loss_db(carry: Carry) -> float:
    """Extra attenuation (dB) of a carry position."""
    return CARRY_LOSS_DB[carry.value]


def mean_rssi_dbm(
    tx_1m_dbm: float,
    distance_m: FloatArray | float,
    placement: Placement,
    doors_open: BoolArray | bool,
    carry: Carry,
) -> FloatArray:
    """Mean RSSI (dBm) before shadowing and fading.

    ``tx_1m_dbm`` is the phone's real radiated power (dBm) the tx-power field is calibrated
    to; ``distance_m`` to the receiver; ``doors_open`` of the receiving bus per advert.
    """
    d = np.maximum(np.asarray(distance_m, dtype=np.float64), MIN_DISTANCE_M)
    inside = placement is Placement.INSIDE
    exponent = PATH_LOSS_EXPONENT_INSIDE if inside else PATH_LOSS_EXPONENT_OUTSIDE
    rssi = tx_1m_dbm - REFERENCE_LOSS_1M_DB - ANTENNA_LOSS_DB - 10.0 * exponent * np.log10(d)
    rssi = rssi - carry_loss_db(carry)
    if not inside:
        body = np.where(doors_open, BODY_LOSS_DOORS_OPEN_DB, BODY_LOSS_DOORS_CLOSED_DB)
        rssi = rssi - body
        if placement is Placement.OTHER_BUS:
            rssi = rssi - BODY_LOSS_DOORS_CLOSED_DB
    return np.broadcast_to(rssi, np.broadcast_shapes(d.shape, np.shape(doors_open))).astype(
        np.float64
    )


def sample_rssi(rng: np.random.Generator, mean_dbm: FloatArray, shadow_db: float) -> FloatArray:
    """Add a per-episode shadowing offset (dB) and per-advert fast fading to ``mean_dbm``."""
    fading = rng.normal(0.0, FADING_SIGMA_DB, size=mean_dbm.shape)
    return np.asarray(mean_dbm + shadow_db + fading, dtype=np.float64)


def reception_prob(rssi_dbm: FloatArray) -> FloatArray:
    """Probability (0..1) that an advert at ``rssi_dbm`` is decoded, given it was listened for.

    Zero below sensitivity, a linear ramp over the last PACKET_LOSS_RAMP_DB, then
    1 − PACKET_LOSS_BASE.
    """
    ramp = np.clip((rssi_dbm - SENSITIVITY_DBM) / PACKET_LOSS_RAMP_DB, 0.0, 1.0)
    return np.asarray(ramp * (1.0 - PACKET_LOSS_BASE), dtype=np.float64)


def heard_mask(rng: np.random.Generator, rssi_dbm: FloatArray) -> BoolArray:
    """Which adverts the receiver decodes (each independently)."""
    return np.asarray(rng.random(rssi_dbm.shape) < reception_prob(rssi_dbm), dtype=np.bool_)


def listened_mask(rng: np.random.Generator, n: int) -> BoolArray:
    """Which of ``n`` adverts fall into the scanner's listening windows (SCAN_HEAR_PROB each)."""
    return np.asarray(rng.random(n) < SCAN_HEAR_PROB, dtype=np.bool_)


def quantise_rssi(rssi_dbm: FloatArray) -> npt.NDArray[np.int64]:
    """Round to whole dBm as a receiver reports it, clipped to the wire range."""
    return np.clip(np.rint(rssi_dbm), RSSI_MIN_DBM, RSSI_MAX_DBM).astype(np.int64)

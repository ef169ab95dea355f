"""A world: one draw of the radio and fleet parameters the simulator runs in.

``World.default()`` is the simulator's single tuned model (the constants of
:mod:`simulator.const`); ``World.draw(seed)`` draws every parameter from the documented
``WORLD_*`` ranges, so bibo can be scored on deployments it was never tuned on
(docs/architecture.md, Reconciliation).
Per-phone and per-bus effects (absent tx, unit offsets, receiver gain, buses without door
events) come from hashes of the world's seed and the id, never from the plan's or the
radio's random streams: the default world leaves every recording byte for byte as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from simulator.const import (
    ADV_INTERVAL_MAX_MS,
    ADV_INTERVAL_MIN_MS,
    ANTENNA_LOSS_DB,
    BODY_LOSS_DOORS_CLOSED_DB,
    BODY_LOSS_DOORS_OPEN_DB,
    CAR_BODY_LOSS_DB,
    CARRY_LOSS_DB,
    CROWD_LOSS_DB_PER_PERSON,
    GNSS_DROPOUT_PROB,
    GNSS_OUTLIER_PROB,
    GNSS_SIGMA_M,
    PACKET_LOSS_BASE,
    PATH_LOSS_EXPONENT_INSIDE,
    PATH_LOSS_EXPONENT_OUTSIDE,
    PHONE_MODELS,
    REFERENCE_LOSS_1M_DB,
    SCAN_INTERVAL_MS,
    SCAN_WINDOW_MS,
    WORLD_ADV_INTERVAL_SCALE,
    WORLD_BODY_CLOSED_DB,
    WORLD_BODY_OPEN_DB,
    WORLD_CAR_BODY_DB,
    WORLD_CARRY_BAG_DB,
    WORLD_CARRY_POCKET_DB,
    WORLD_CROWD_DB_PER_PERSON,
    WORLD_EXPONENT_INSIDE,
    WORLD_EXPONENT_OUTSIDE,
    WORLD_GNSS_DROPOUT_PROB,
    WORLD_GNSS_OUTLIER_PROB,
    WORLD_GNSS_SIGMA_M,
    WORLD_JOURNEY_EVENT_MISSING_SHARE,
    WORLD_MODEL_OFFSET_DB,
    WORLD_NO_DOORS_SHARE,
    WORLD_PACKET_LOSS_BASE,
    WORLD_POWER_LEVEL_DBM,
    WORLD_RECEIVER_GAIN_SPREAD_DB,
    WORLD_RSSI_1M_ERROR_DB,
    WORLD_SCAN_DUTY,
    WORLD_SCAN_INTERVAL_MS,
    WORLD_STOP_EVENT_JITTER_MS,
    WORLD_STOP_EVENT_MISSING_SHARE,
    WORLD_TX_ABSENT_SHARE,
    WORLD_TX_CONVENTIONS,
    WORLD_TX_UNKNOWN_7F_SHARE,
    WORLD_UNIT_SPREAD_DB,
    WORLD_VERSION,
)

if TYPE_CHECKING:
    from simulator.population import Phone

TX_ABSENT: Final = -128
"""The tx byte a phone without tx sends in this simulator: the onboard unit uploads it as
``tx: null`` (it is outside the wire's -127..127)."""

TX_UNKNOWN_7F: Final = 0x7F
"""The tx byte meaning "unknown" that some phones send (docs/contracts.md, BLE payload)."""

_WORLD_SALT: Final = 0x5E1D
"""Separates ``World.draw``'s random stream from the plan's and the radio's seeds."""


def _unit(seed: int, kind: str, key: str) -> float:
    """A deterministic uniform [0, 1) per (world seed, kind, id)."""
    digest = hashlib.blake2b(f"{seed}|{kind}|{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


@dataclass(frozen=True, slots=True)
class World:
    """Radio and fleet parameters (dB losses, dBm levels, ms times, shares 0..1).

    ``seed`` is ``None`` for the default world, else the seed it was drawn from (and the
    salt of its per-phone and per-bus hashes). ``model_tx_dbm`` maps a phone model to the
    tx byte it advertises (empty: the model table of PHONE_MODELS); ``model_offset_db`` to
    the extra power it really radiates (empty: none).
    """

    seed: int | None
    tx_convention: str
    tx_absent_share: float
    tx_unknown_7f_share: float
    model_tx_dbm: tuple[tuple[str, int], ...]
    model_offset_db: tuple[tuple[str, float], ...]
    unit_spread_db: float
    receiver_gain_spread_db: float
    exponent_inside: float
    exponent_outside: float
    carry_pocket_db: float
    carry_bag_db: float
    body_closed_db: float
    body_open_db: float
    car_body_db: float
    crowd_db_per_person: float
    packet_loss_base: float
    scan_interval_ms: int
    scan_window_ms: int
    adv_interval_scale: float
    no_doors_share: float
    stop_event_jitter_ms: int
    stop_event_missing_share: float
    journey_event_missing_share: float
    gnss_sigma_m: float
    gnss_outlier_prob: float
    gnss_dropout_prob: float

    @classmethod
    def default(cls) -> World:
        """Today's single model: every parameter at its constant in :mod:`simulator.const`."""
        return cls(
            seed=None,
            tx_convention="model-table",
            tx_absent_share=0.0,
            tx_unknown_7f_share=0.0,
            model_tx_dbm=(),
            model_offset_db=(),
            unit_spread_db=0.0,
            receiver_gain_spread_db=0.0,
            exponent_inside=PATH_LOSS_EXPONENT_INSIDE,
            exponent_outside=PATH_LOSS_EXPONENT_OUTSIDE,
            carry_pocket_db=CARRY_LOSS_DB["pocket"],
            carry_bag_db=CARRY_LOSS_DB["bag"],
            body_closed_db=BODY_LOSS_DOORS_CLOSED_DB,
            body_open_db=BODY_LOSS_DOORS_OPEN_DB,
            car_body_db=CAR_BODY_LOSS_DB,
            crowd_db_per_person=CROWD_LOSS_DB_PER_PERSON,
            packet_loss_base=PACKET_LOSS_BASE,
            scan_interval_ms=SCAN_INTERVAL_MS,
            scan_window_ms=SCAN_WINDOW_MS,
            adv_interval_scale=1.0,
            no_doors_share=0.0,
            stop_event_jitter_ms=0,
            stop_event_missing_share=0.0,
            journey_event_missing_share=0.0,
            gnss_sigma_m=GNSS_SIGMA_M,
            gnss_outlier_prob=GNSS_OUTLIER_PROB,
            gnss_dropout_prob=GNSS_DROPOUT_PROB,
        )

    @classmethod
    def draw(cls, seed: int) -> World:
        """A world drawn uniformly from the ``WORLD_*`` ranges; the same seed, the same world."""
        rng = np.random.default_rng(np.random.SeedSequence([_WORLD_SALT, seed & (2**63 - 1)]))

        def u(lo_hi: tuple[float, float]) -> float:
            return float(rng.uniform(lo_hi[0], lo_hi[1]))

        def i(lo_hi: tuple[int, int]) -> int:
            return int(rng.integers(lo_hi[0], lo_hi[1] + 1))

        convention = WORLD_TX_CONVENTIONS[int(rng.integers(len(WORLD_TX_CONVENTIONS)))]
        models = [m[0] for m in PHONE_MODELS]
        table = {m[0]: m[1] for m in PHONE_MODELS}
        if convention == "rssi-1m":
            loss_1m = REFERENCE_LOSS_1M_DB + ANTENNA_LOSS_DB
            model_tx = tuple(
                (m, round(table[m] - loss_1m + u(WORLD_RSSI_1M_ERROR_DB))) for m in models
            )
        elif convention == "power-level":
            model_tx = tuple((m, i(WORLD_POWER_LEVEL_DBM)) for m in models)
        else:
            model_tx = ()
        model_offset = tuple((m, round(u(WORLD_MODEL_OFFSET_DB), 2)) for m in models)
        scan_interval = i(WORLD_SCAN_INTERVAL_MS)
        scan_window = max(1, min(scan_interval, round(scan_interval * u(WORLD_SCAN_DUTY))))
        return cls(
            seed=seed,
            tx_convention=convention,
            tx_absent_share=u(WORLD_TX_ABSENT_SHARE),
            tx_unknown_7f_share=u(WORLD_TX_UNKNOWN_7F_SHARE),
            model_tx_dbm=model_tx,
            model_offset_db=model_offset,
            unit_spread_db=u(WORLD_UNIT_SPREAD_DB),
            receiver_gain_spread_db=u(WORLD_RECEIVER_GAIN_SPREAD_DB),
            exponent_inside=u(WORLD_EXPONENT_INSIDE),
            exponent_outside=u(WORLD_EXPONENT_OUTSIDE),
            carry_pocket_db=u(WORLD_CARRY_POCKET_DB),
            carry_bag_db=u(WORLD_CARRY_BAG_DB),
            body_closed_db=u(WORLD_BODY_CLOSED_DB),
            body_open_db=u(WORLD_BODY_OPEN_DB),
            car_body_db=u(WORLD_CAR_BODY_DB),
            crowd_db_per_person=u(WORLD_CROWD_DB_PER_PERSON),
            packet_loss_base=u(WORLD_PACKET_LOSS_BASE),
            scan_interval_ms=scan_interval,
            scan_window_ms=scan_window,
            adv_interval_scale=u(WORLD_ADV_INTERVAL_SCALE),
            no_doors_share=u(WORLD_NO_DOORS_SHARE),
            stop_event_jitter_ms=i(WORLD_STOP_EVENT_JITTER_MS),
            stop_event_missing_share=u(WORLD_STOP_EVENT_MISSING_SHARE),
            journey_event_missing_share=u(WORLD_JOURNEY_EVENT_MISSING_SHARE),
            gnss_sigma_m=u(WORLD_GNSS_SIGMA_M),
            gnss_outlier_prob=u(WORLD_GNSS_OUTLIER_PROB),
            gnss_dropout_prob=u(WORLD_GNSS_DROPOUT_PROB),
        )

    @property
    def is_default(self) -> bool:
        """Whether this is today's model (then no per-phone or per-bus effect applies)."""
        return self == DEFAULT_WORLD

    @property
    def _salt(self) -> int:
        return 0 if self.seed is None else self.seed

    # --- per phone ---------------------------------------------------------------------

    def advertised_tx(self, phone: Phone, person_id: str) -> int:
        """The tx byte (signed dBm) this person's phone puts in its payload:
        :data:`TX_ABSENT` or :data:`TX_UNKNOWN_7F` when it cannot say."""
        if self.tx_absent_share > 0 and _unit(self._salt, "tx", person_id) < self.tx_absent_share:
            if _unit(self._salt, "7f", person_id) < self.tx_unknown_7f_share:
                return TX_UNKNOWN_7F
            return TX_ABSENT
        return dict(self.model_tx_dbm).get(phone.model, phone.tx_power_dbm)

    def radiated_dbm(self, phone: Phone, person_id: str) -> float:
        """What the phone really radiates (dBm at 1 m): the plan's draw plus the world's
        model offset and unit offset."""
        tx = phone.tx_1m_dbm
        offset = dict(self.model_offset_db).get(phone.model, 0.0)
        if offset:
            tx += offset
        if self.unit_spread_db > 0:
            tx += (2.0 * _unit(self._salt, "unit", person_id) - 1.0) * self.unit_spread_db
        return tx

    def adv_interval_ms(self, phone: Phone) -> int:
        """The phone's advertising interval (ms) in this world, within the legal range."""
        if self.adv_interval_scale == 1.0:
            return phone.adv_interval_ms
        scaled = round(phone.adv_interval_ms * self.adv_interval_scale)
        return max(ADV_INTERVAL_MIN_MS, min(ADV_INTERVAL_MAX_MS, scaled))

    # --- per bus -----------------------------------------------------------------------

    def receiver_gain_db(self, vehicle_id: str) -> float:
        """The bus receiver's gain (dB) against the model: uniform within ± the spread."""
        if self.receiver_gain_spread_db <= 0:
            return 0.0
        return (2.0 * _unit(self._salt, "gain", vehicle_id) - 1.0) * self.receiver_gain_spread_db

    def has_doors(self, vehicle_id: str) -> bool:
        """Whether this bus's onboard computer reports door events."""
        return not _unit(self._salt, "doors", vehicle_id) < self.no_doors_share

    # --- persisted shape ---------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """``world.json`` of a recording: ``version`` and every parameter."""
        doc = asdict(self)
        doc["model_tx_dbm"] = dict(self.model_tx_dbm)
        doc["model_offset_db"] = dict(self.model_offset_db)
        return {"version": WORLD_VERSION, "default": self.is_default, **doc}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> World:
        """The world a ``world.json`` describes (ValueError names a bad version or field)."""
        if doc.get("version") != WORLD_VERSION:
            raise ValueError(f"version: expected {WORLD_VERSION}, got {doc.get('version')!r}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in doc]
        if missing:
            raise ValueError(f"world: missing field(s) {', '.join(missing)}")
        values = {n: doc[n] for n in names}
        values["model_tx_dbm"] = tuple(doc["model_tx_dbm"].items())
        values["model_offset_db"] = tuple(doc["model_offset_db"].items())
        return cls(**values)


DEFAULT_WORLD: Final = World.default()
"""Today's model, shared (a World is immutable)."""

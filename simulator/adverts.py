"""The adverts one bus decodes in one slot of its day, for all nearby phones at once.

Vectorised over every advert of every episode in the slot (a region day has ~10⁸), with
the radio model of :mod:`simulator.radio`: each episode draws its link (losses, shadowing
and fading parameters), its phone advertises every interval plus the random advDelay,
the scanner listens in windows with gaps, and each advert's RSSI is the link's mean at
that distance and door state, plus the episode's time-correlated shadowing, plus fast
fading; it is decoded with the reception probability (sensitivity, base loss,
collisions with the other phones on board). Silent phones (outages) send nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from simulator.bystanders import MOVING_KINDS, Episode
from simulator.const import ADV_DELAY_MAX_MS
from simulator.population import Person
from simulator.radio import (
    Placement,
    Scanner,
    carry_code,
    crowd_loss_db,
    draw_links,
    fading_pool_db,
    path_loss_db,
    placement_code,
    quantise_rssi,
    reception_prob,
)
from simulator.timetable import doors_open_at
from simulator.world import DEFAULT_WORLD, World

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Receiver:
    """What the receiving bus contributes to every link: its scanner, doors and crowd.

    ``occ_t``/``occ_n``: people on board from each instant on; ``other_doors``: door
    boundaries of the buses its neighbours' riders sit in; ``outages``: silent spans
    (epoch ms) by person id; ``gain_db`` the receiver's gain against the model (dB, a
    world's per-bus draw); ``world`` the radio and phone parameters.
    """

    scanner: Scanner
    doors: IntArray
    occ_t: IntArray
    occ_n: IntArray
    other_doors: Mapping[str, IntArray]
    outages: Mapping[str, tuple[tuple[int, int], ...]]
    gain_db: float = 0.0
    world: World = DEFAULT_WORLD

    def occupancy(self, t: IntArray) -> FloatArray:
        """People on board at each instant."""
        if self.occ_t.size == 0:
            return np.zeros(t.shape, dtype=np.float64)
        k = np.searchsorted(self.occ_t, t, side="right") - 1
        return np.where(k >= 0, self.occ_n[np.clip(k, 0, None)], 0).astype(np.float64)


_PLACEMENTS = tuple(Placement)


def _segment_starts(seg: IntArray, n_segments: int) -> IntArray:
    """Index of each segment's first element in a sorted segment-id array."""
    return np.asarray(np.searchsorted(seg, np.arange(n_segments)), dtype=np.int64)


def _shadowing_unit(
    rng: np.random.Generator, t: IntArray, seg: IntArray, n_seg: int, tau_s: FloatArray
) -> FloatArray:
    """Unit-variance Gauss–Markov shadowing per advert, independent per episode.

    Each episode's process lives on its own 1 s grid; episodes with the same correlation
    time are filtered together and the carry-over between neighbours is subtracted.
    """
    out = np.zeros(t.size, dtype=np.float64)
    if t.size == 0:
        return out
    starts = _segment_starts(seg, n_seg)
    first_t = np.where(starts < t.size, t[np.minimum(starts, t.size - 1)], 0)
    sec = (t - first_t[seg]) // 1000
    last_sec = np.zeros(n_seg, dtype=np.int64)
    np.maximum.at(last_sec, seg, sec)
    lengths = np.where(np.bincount(seg, minlength=n_seg) > 0, last_sec + 1, 0)
    for tau in np.unique(tau_s):
        eps = np.flatnonzero((tau_s == tau) & (lengths > 0))
        if eps.size == 0:
            continue
        rho = float(np.exp(-1.0 / tau))
        b = np.sqrt(1.0 - rho * rho)
        lens = lengths[eps]
        offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
        noise = rng.normal(0.0, 1.0, size=int(lens.sum()))
        noise[offs] /= b  # each episode starts in the stationary distribution
        y = lfilter([b], [1.0, -rho], noise)
        carry = np.where(offs > 0, y[np.maximum(offs - 1, 0)], 0.0)
        grid_seg = np.repeat(np.arange(eps.size), lens)
        k = np.arange(grid_seg.size) - offs[grid_seg]
        x = y - rho ** (k + 1) * carry[grid_seg]
        pos = np.full(n_seg, -1, dtype=np.int64)
        pos[eps] = np.arange(eps.size)
        mine = pos[seg] >= 0
        out[mine] = x[offs[pos[seg[mine]]] + sec[mine]]
    return out


def _distances(eps: Sequence[Episode], t: IntArray, seg: IntArray) -> FloatArray:
    """Distance (m) of each advert's phone, from its episode's path."""
    n = len(eps)
    d = np.empty(t.size, dtype=np.float64)
    starts = _segment_starts(seg, n)
    ends = np.append(starts[1:], t.size)
    knots = np.array([len(e.path_t) for e in eps])
    d0 = np.array([e.path_d[0] for e in eps], dtype=np.float64)
    d1 = np.array([e.path_d[-1] for e in eps], dtype=np.float64)
    t0 = np.array([e.path_t[0] for e in eps], dtype=np.int64)
    t1 = np.array([e.path_t[-1] for e in eps], dtype=np.int64)
    simple = knots[seg] <= 2  # constant, or linear between two knots (clamped)
    ss = seg[simple]
    frac = np.clip((t[simple] - t0[ss]) / np.maximum(t1[ss] - t0[ss], 1), 0.0, 1.0)
    d[simple] = d0[ss] + (d1[ss] - d0[ss]) * frac
    for i in np.flatnonzero(knots > 2):
        lo, hi = int(starts[i]), int(ends[i])
        if hi > lo:
            e = eps[int(i)]
            d[lo:hi] = np.interp(
                t[lo:hi].astype(np.float64),
                np.asarray(e.path_t, dtype=np.float64),
                np.asarray(e.path_d, dtype=np.float64),
            )
    offset = np.array([e.offset_m for e in eps], dtype=np.float64)[seg]
    return np.where(offset > 0, np.hypot(d, offset), d)


def slot_adverts(
    rng: np.random.Generator,
    eps: Sequence[Episode],
    persons: Sequence[Person],
    rx: Receiver,
    lo: int,
    hi: int,
) -> tuple[IntArray, IntArray, IntArray]:
    """Decoded adverts of ``eps`` (phones ``persons[i]``) within [lo, hi), time ordered:
    times (epoch ms), episode index, RSSI (dBm)."""
    n_eps = len(eps)
    empty = np.zeros(0, dtype=np.int64)
    if n_eps == 0:
        return empty, empty, empty
    phones = [p.phone for p in persons]
    world = rx.world
    links = draw_links(
        rng,
        np.array([placement_code(e.placement) for e in eps], dtype=np.int64),
        np.array(
            [carry_code(e.carry or ph.carry) for e, ph in zip(eps, phones, strict=True)],
            dtype=np.int64,
        ),
        np.array([e.kind in MOVING_KINDS for e in eps], dtype=bool),
        world,
    )
    e_lo = np.array([max(e.start_ms, lo) for e in eps], dtype=np.int64)
    e_hi = np.array([min(e.end_ms, hi) for e in eps], dtype=np.int64)
    interval = np.array([world.adv_interval_ms(ph) for ph in phones], dtype=np.int64)
    count = np.maximum(0, (e_hi - e_lo) // interval + 2)
    phase = (rng.random(n_eps) * interval).astype(np.int64)
    seg = np.repeat(np.arange(n_eps), count)
    steps = interval[seg] + rng.integers(0, ADV_DELAY_MAX_MS + 1, size=seg.size)
    cum = np.cumsum(steps)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    t = e_lo[seg] + phase[seg] + cum - cum[first[seg]]
    keep = t < e_hi[seg]
    for i, p in enumerate(persons):
        for o0, o1 in rx.outages.get(p.person_id, ()):
            keep[first[i] : first[i] + count[i]] &= ~(
                (t[first[i] : first[i] + count[i]] >= o0) & (t[first[i] : first[i] + count[i]] < o1)
            )
    keep &= rx.scanner.listening(t)
    t, seg = t[keep], seg[keep]
    if t.size == 0:
        return empty, empty, empty

    placement = np.array([_PLACEMENTS.index(e.placement) for e in eps], dtype=np.int64)[seg]
    field = {name: values[seg] for name, values in links.items()}
    tx = np.array([world.radiated_dbm(p.phone, p.person_id) for p in persons], dtype=np.float64)[
        seg
    ]
    d = _distances(eps, t, seg)
    occupancy = rx.occupancy(t)
    doors = doors_open_at(rx.doors, t)
    inside = placement == _PLACEMENTS.index(Placement.INSIDE)
    rssi = tx - path_loss_db(d, field["exponent"]) - field["carry_db"]
    rssi -= np.where(inside, crowd_loss_db(occupancy, d, world.crowd_db_per_person), 0.0)
    rssi -= np.where(inside, 0.0, np.where(doors, field["body_open_db"], field["body_closed_db"]))
    other_bus = placement == _PLACEMENTS.index(Placement.OTHER_BUS)
    if other_bus.any():
        other_open = np.zeros(t.size, dtype=bool)
        for i in np.unique(seg[other_bus]):
            vid = eps[int(i)].other_vehicle_id
            if vid is not None and vid in rx.other_doors:
                m = seg == i
                other_open[m] = doors_open_at(rx.other_doors[vid], t[m])
        rssi -= np.where(
            other_bus, np.where(other_open, field["other_open_db"], field["other_closed_db"]), 0.0
        )
    rssi -= np.where(placement == _PLACEMENTS.index(Placement.IN_CAR), field["car_db"], 0.0)
    rssi += field["shadow_sigma_db"] * _shadowing_unit(rng, t, seg, n_eps, links["shadow_tau_s"])
    rssi += fading_pool_db(rng, field["rician_k"])
    if rx.gain_db:
        rssi += rx.gain_db  # antenna/adapter gain: the signal, and the reported RSSI, shift
    decoded = rng.random(t.size) < reception_prob(rssi, occupancy, world.packet_loss_base)
    t, seg, rssi = t[decoded], seg[decoded], rssi[decoded]
    order = np.argsort(t, kind="stable")
    return t[order], seg[order], quantise_rssi(rssi[order])

"""Randomized worlds: the default world is today's model, drawn worlds stay in their ranges
and really change what the buses upload, and every library scenario runs in any world."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from simulator import const
from simulator.cli import main
from simulator.day import journey_events, make_device_keys, plan_day, vehicle_slots
from simulator.recording import identity, record_vehicle_agent, record_vehicle_fast, write_recording
from simulator.scenarios import library
from simulator.world import DEFAULT_WORLD, TX_UNKNOWN_7F, World
from tests.simulator.conftest import TINY

RANGES = {
    "tx_absent_share": const.WORLD_TX_ABSENT_SHARE,
    "tx_unknown_7f_share": const.WORLD_TX_UNKNOWN_7F_SHARE,
    "unit_spread_db": const.WORLD_UNIT_SPREAD_DB,
    "receiver_gain_spread_db": const.WORLD_RECEIVER_GAIN_SPREAD_DB,
    "exponent_inside": const.WORLD_EXPONENT_INSIDE,
    "exponent_outside": const.WORLD_EXPONENT_OUTSIDE,
    "carry_pocket_db": const.WORLD_CARRY_POCKET_DB,
    "carry_bag_db": const.WORLD_CARRY_BAG_DB,
    "body_closed_db": const.WORLD_BODY_CLOSED_DB,
    "body_open_db": const.WORLD_BODY_OPEN_DB,
    "car_body_db": const.WORLD_CAR_BODY_DB,
    "crowd_db_per_person": const.WORLD_CROWD_DB_PER_PERSON,
    "packet_loss_base": const.WORLD_PACKET_LOSS_BASE,
    "scan_interval_ms": const.WORLD_SCAN_INTERVAL_MS,
    "adv_interval_scale": const.WORLD_ADV_INTERVAL_SCALE,
    "no_doors_share": const.WORLD_NO_DOORS_SHARE,
    "stop_event_jitter_ms": const.WORLD_STOP_EVENT_JITTER_MS,
    "stop_event_missing_share": const.WORLD_STOP_EVENT_MISSING_SHARE,
    "journey_event_missing_share": const.WORLD_JOURNEY_EVENT_MISSING_SHARE,
    "gnss_sigma_m": const.WORLD_GNSS_SIGMA_M,
    "gnss_outlier_prob": const.WORLD_GNSS_OUTLIER_PROB,
    "gnss_dropout_prob": const.WORLD_GNSS_DROPOUT_PROB,
}


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _sightings(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "batches").iterdir()):
        for line in path.read_text("utf-8").splitlines():
            rows.append(json.loads(line))
    return rows


@pytest.fixture(scope="module")
def tiny_plan(network):
    return plan_day(network, TINY, 21)


def _record(plan, out: Path, world: World | None, recorder: str = "fast") -> Path:
    kwargs = {} if world is None else {"world": world}
    write_recording(
        plan, out, name="tiny", description="", radio_seed=22, recorder=recorder, **kwargs
    )
    return out


# --- the default world is today's model -----------------------------------------------------


def test_default_world_holds_todays_constants():
    w = World.default()
    assert w == DEFAULT_WORLD
    assert w.is_default
    assert w.exponent_inside == const.PATH_LOSS_EXPONENT_INSIDE
    assert w.carry_bag_db == const.CARRY_LOSS_DB["bag"]
    assert w.scan_window_ms == const.SCAN_WINDOW_MS
    assert w.gnss_sigma_m == const.GNSS_SIGMA_M
    assert w.tx_absent_share == w.no_doors_share == w.receiver_gain_spread_db == 0.0


@pytest.mark.parametrize("recorder", ["agent", "fast"])
def test_explicit_default_world_is_byte_identical(tiny_plan, tmp_path, recorder):
    implicit = _files(_record(tiny_plan, tmp_path / "a", None, recorder))
    explicit = _files(_record(tiny_plan, tmp_path / "b", World.default(), recorder))
    assert implicit == explicit
    world = json.loads(implicit["world.json"])
    assert world["version"] == 1
    assert world["default"] is True
    assert world["seed"] is None


# --- drawn worlds ---------------------------------------------------------------------------


def test_draw_is_deterministic_and_differs_between_seeds():
    assert World.draw(7) == World.draw(7)
    assert World.draw(7) != World.draw(8)
    assert not World.draw(7).is_default


def test_drawn_parameters_lie_in_their_documented_ranges():
    conventions = set()
    for seed in range(300):
        w = World.draw(seed)
        for name, (lo, hi) in RANGES.items():
            assert lo <= getattr(w, name) <= hi, (seed, name, getattr(w, name))
        lo_duty, hi_duty = const.WORLD_SCAN_DUTY
        assert 1 <= w.scan_window_ms <= w.scan_interval_ms
        assert lo_duty - 0.02 <= w.scan_window_ms / w.scan_interval_ms <= hi_duty
        models = [m[0] for m in const.PHONE_MODELS]
        assert [m for m, _ in w.model_offset_db] == models
        lo, hi = const.WORLD_MODEL_OFFSET_DB
        assert all(lo <= v <= hi for _, v in w.model_offset_db)
        conventions.add(w.tx_convention)
        assert w.tx_convention in const.WORLD_TX_CONVENTIONS
        if w.tx_convention == "power-level":
            lo, hi = const.WORLD_POWER_LEVEL_DBM
            assert all(lo <= v <= hi for _, v in w.model_tx_dbm)
        elif w.tx_convention == "rssi-1m":
            loss_1m = const.REFERENCE_LOSS_1M_DB + const.ANTENNA_LOSS_DB
            table = [m[1] for m in const.PHONE_MODELS]
            lo_err, hi_err = const.WORLD_RSSI_1M_ERROR_DB
            lo, hi = min(table) - loss_1m + lo_err, max(table) - loss_1m + hi_err
            assert all(round(lo) <= v <= round(hi) for _, v in w.model_tx_dbm)
        else:
            assert w.model_tx_dbm == ()
        assert World.from_document(w.document()) == w
    assert conventions == set(const.WORLD_TX_CONVENTIONS)


def test_world_json_records_the_drawn_world(tiny_plan, tmp_path):
    world = World.draw(5)
    out = _record(tiny_plan, tmp_path, world)
    doc = json.loads((out / "world.json").read_text("utf-8"))
    assert doc["version"] == 1
    assert doc["seed"] == 5
    assert doc["default"] is False
    assert World.from_document(doc) == world


# --- worlds change the recording ------------------------------------------------------------


def test_no_phone_reports_tx(tiny_plan, tmp_path):
    world = dataclasses.replace(DEFAULT_WORLD, seed=1, tx_absent_share=1.0)
    batches = _sightings(_record(tiny_plan, tmp_path, world))
    tx = [v for b in batches for v in b["sightings"]["tx"]]
    assert len(tx) > 100
    assert set(tx) == {None}


def test_phones_sending_0x7f_are_uploaded_as_unknown(tiny_plan):
    world = dataclasses.replace(DEFAULT_WORLD, seed=1, tx_absent_share=1.0, tx_unknown_7f_share=1.0)
    vid = tiny_plan.vehicle_ids[0]
    keys = make_device_keys(tiny_plan, 5)
    bodies = list(record_vehicle_fast(tiny_plan, identity("t", vid), keys, 3, 60_000, world=world))
    tx = {v for b in bodies for v in json.loads(b)["sightings"]["tx"]}
    assert TX_UNKNOWN_7F == 127
    assert tx == {None}  # the unit nulls 0x7F as it nulls -128 (docs/contracts.md, BLE payload)


def test_tx_conventions_set_the_advertised_byte(tiny_plan, tmp_path):
    for seed in range(40):
        world = World.draw(seed)
        if world.tx_convention == "rssi-1m":
            break
    world = dataclasses.replace(world, tx_absent_share=0.0)
    tx = {v for b in _sightings(_record(tiny_plan, tmp_path, world)) for v in b["sightings"]["tx"]}
    assert tx <= {v for _, v in world.model_tx_dbm}
    assert max(tx) < -30


def test_buses_without_door_events(tiny_plan, tmp_path):
    world = dataclasses.replace(DEFAULT_WORLD, seed=1, no_doors_share=1.0)
    types = {
        e["type"] for b in _sightings(_record(tiny_plan, tmp_path, world)) for e in b["events"]
    }
    assert {"arrival", "departure", "position", "journey"} <= types
    assert not types & {"doors_open", "doors_closed"}


def test_receiver_gain_shifts_rssi(tiny_plan):
    keys = make_device_keys(tiny_plan, 5)
    vid = tiny_plan.vehicle_ids[0]
    loud = dataclasses.replace(DEFAULT_WORLD, seed=3, receiver_gain_spread_db=10.0)
    gain = loud.receiver_gain_db(vid)
    assert abs(gain) > 0.5
    # The same random draws in both runs: every advert decoded in both is heard louder or
    # softer by exactly the gain (up to the rounding to whole dBm).
    base = {
        (t, s.persons[p].person_id): r
        for s in vehicle_slots(tiny_plan, vid, keys, 4)
        for t, p, r in zip(s.t.tolist(), s.person.tolist(), s.rssi.tolist(), strict=True)
    }
    shifted = {
        (t, s.persons[p].person_id): r
        for s in vehicle_slots(tiny_plan, vid, keys, 4, loud)
        for t, p, r in zip(s.t.tolist(), s.person.tolist(), s.rssi.tolist(), strict=True)
    }
    both = base.keys() & shifted.keys()
    assert len(both) > 1000
    assert all(abs(shifted[k] - base[k] - gain) <= 1 for k in both)
    assert (len(shifted) > len(base)) == (gain > 0)


def test_stop_events_jitter_and_go_missing(network, tiny_plan):
    journey = tiny_plan.vehicles[0].journeys[0]
    world = dataclasses.replace(
        DEFAULT_WORLD, seed=1, stop_event_jitter_ms=15_000, stop_event_missing_share=0.5
    )
    clean = journey_events(network, journey, np.random.default_rng(1))
    noisy = journey_events(
        network, journey, np.random.default_rng(1), world, True, np.random.default_rng(2)
    )
    arrivals = {e.stop_id: e.t for e in clean if e.type == "arrival"}
    moved = {e.stop_id: e.t for e in noisy if e.type == "arrival"}
    assert len(moved) < len(arrivals)
    assert all(abs(moved[s] - arrivals[s]) <= 15_000 for s in moved)
    assert any(moved[s] != arrivals[s] for s in moved)
    assert [e.t for e in noisy] == sorted(e.t for e in noisy)


def test_fast_recorder_matches_the_agent_in_a_drawn_world(tiny_plan):
    """The numpy recorder mirrors the agent also with null tx, jitter and missing events."""
    world = dataclasses.replace(World.draw(11), tx_absent_share=0.5, tx_unknown_7f_share=0.3)
    keys = make_device_keys(tiny_plan, 5)
    ident = identity("t", tiny_plan.vehicle_ids[0])
    agent, _ = asyncio.run(record_vehicle_agent(tiny_plan, ident, keys, 9, 10_000, world))
    fast = list(record_vehicle_fast(tiny_plan, ident, keys, 9, 10_000, world=world))
    assert fast == agent


# --- every scenario in any world ------------------------------------------------------------


@pytest.mark.parametrize("scenario", library(), ids=lambda s: s.name)
def test_every_library_scenario_runs_in_a_drawn_world(network, scenario, tmp_path):
    # The library's days take minutes; the first hour with a few dozen people keeps every
    # scenario's lines, convoys and bystander kinds at a fraction of the cost.
    start = scenario.config.service_start
    config = dataclasses.replace(
        scenario.config,
        passengers=min(scenario.config.passengers, 40),
        bystanders=min(scenario.config.bystanders, 30),
        service_end=dt.time(start.hour + 1, start.minute),
    )
    plan = plan_day(network, config, scenario.seed)
    world = World.draw(scenario.seed)
    rec = write_recording(
        plan,
        tmp_path,
        name=scenario.name,
        description="",
        radio_seed=scenario.radio_seed,
        recorder="fast",
        upload_interval_ms=scenario.upload_interval_ms,
        world=world,
    )
    assert rec.batches > 0
    assert json.loads((tmp_path / "world.json").read_text("utf-8"))["seed"] == scenario.seed


# --- command line ---------------------------------------------------------------------------


def test_cli_world_flag_end_to_end(tmp_path, capsys):
    out = tmp_path / "clean"
    args = ["simulate", "clean", "--out", str(out), "--recorder", "fast", "--world", "42"]
    assert main(args) == 0
    doc = json.loads((out / "world.json").read_text("utf-8"))
    assert doc["seed"] == 42
    assert World.from_document(doc) == World.draw(42)
    assert "world 42" in capsys.readouterr().out


def test_cli_world_bad_input_is_one_line(tmp_path, capsys):
    for bad in ("abc", "-3"):
        with pytest.raises(SystemExit) as exc:
            main(["simulate", "clean", "--out", str(tmp_path / "x"), "--world", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--world" in err
        assert len(err.strip().splitlines()) == 1


def test_the_latency_model_passes_as_often_as_the_backend_worker():
    # The simulator models the deployment's worker pass; the backend owns the setting.
    from backend.const import RECONCILE_INTERVAL_S
    from simulator.const import WORKER_PASS_S

    assert WORKER_PASS_S == RECONCILE_INTERVAL_S

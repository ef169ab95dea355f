from __future__ import annotations

import asyncio
import json

import pytest

from backend.passengers.schemas import DeviceImportFile
from onboard import wire
from simulator.recording import (
    Recording,
    RecordingError,
    identity,
    record_vehicle_agent,
    record_vehicle_fast,
    write_recording,
)


def test_fast_recorder_is_byte_identical_to_the_real_agent(small_plan, small_keys):
    """The numpy recorder of the region day uploads exactly what the agent uploads."""
    convoy = next(v for v in small_plan.vehicles if v.journeys[0].leader)
    for vehicle in (small_plan.vehicles[0], convoy):
        ident = identity("test", vehicle.vehicle_id)
        agent, adverts = asyncio.run(record_vehicle_agent(small_plan, ident, small_keys, 9, 10_000))
        fast = list(record_vehicle_fast(small_plan, ident, small_keys, 9, 10_000))
        assert adverts > 500
        assert len(agent) > 20
        assert fast == agent


@pytest.fixture(scope="module")
def recorded(small_plan, tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    vids = list(small_plan.vehicle_ids[:2])
    rec = write_recording(
        small_plan, out, name="unit", description="d", radio_seed=2, vehicle_ids=vids
    )
    return out, rec


def test_recording_directory(recorded, small_plan):
    out, rec = recorded
    scenario = json.loads((out / "scenario.json").read_text("utf-8"))
    assert scenario["version"] == 1
    assert scenario["name"] == "unit"
    assert scenario["counts"]["batches"] == rec.batches > 0
    DeviceImportFile.model_validate_json((out / "devices.json").read_bytes())
    recording = Recording.open(out)
    assert [v["vehicle_id"] for v in recording.vehicles] == list(small_plan.vehicle_ids[:2])
    assert recording.network() is not None
    assert set(recording.network().stops) == set(small_plan.network.stops)
    for v in recording.vehicles:
        bodies = list(recording.batches(v["vehicle_id"]))
        assert len(bodies) == v["batches"]
        batches = [wire.Batch.model_validate_json(b) for b in bodies]
        assert [b.seq for b in batches] == list(range(len(batches)))
        assert {b.boot_id for b in batches} == {v["boot_id"]}
        sent = [b.sent_at for b in batches]
        assert sent == sorted(sent)
        assert sum(len(b.sightings) for b in batches) > 0
    keys = recording.device_keys()
    assert all(len(k) == 32 for k in keys.values())


def test_compressed_batches_read_back(small_plan, tmp_path):
    vid = small_plan.vehicle_ids[0]
    write_recording(
        small_plan,
        tmp_path,
        name="gz",
        description="",
        radio_seed=2,
        recorder="fast",
        compress=True,
        vehicle_ids=[vid],
    )
    assert (tmp_path / "batches" / f"{vid}.jsonl.gz").is_file()
    assert len(list(Recording.open(tmp_path).batches(vid))) > 10


def test_bad_recordings_are_named(tmp_path):
    with pytest.raises(RecordingError, match=r"scenario\.json: missing"):
        Recording.open(tmp_path)
    for name in ("scenario.json", "vehicles.json", "devices.json"):
        (tmp_path / name).write_text('{"version": 9, "vehicles": [], "devices": []}', "utf-8")
    with pytest.raises(RecordingError, match=r"scenario\.json: version: expected 1, got 9"):
        Recording.open(tmp_path)


def test_unknown_recorder_refused(small_plan, tmp_path):
    with pytest.raises(ValueError, match="recorder: expected 'agent' or 'fast'"):
        write_recording(small_plan, tmp_path, name="x", description="", radio_seed=1, recorder="x")

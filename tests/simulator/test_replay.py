"""Replaying a recording against the real backend app, in process."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from backend import services
from backend.db import make_sessionmaker, transaction
from simulator.day import plan_day
from simulator.recording import Recording, write_recording
from simulator.replay import ReplayError, load_secrets, replay
from tests.simulator.conftest import SMALL_DAY

TINY = dataclasses.replace(
    SMALL_DAY,
    lines=("C1",),
    buses=1,
    convoys=0,
    passengers=15,
    bystanders=5,
    service_start=dt.time(7, 0),
    service_end=dt.time(7, 20),
)


@pytest.fixture(scope="module")
def recording(network, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    plan = plan_day(network, TINY, 3)
    write_recording(plan, out, name="replay", description="", radio_seed=4, recorder="fast")
    return Recording.open(out)


@pytest.fixture
def secrets(engine, recording):
    factory = make_sessionmaker(engine)
    out = {}
    with transaction(factory) as session:
        for v in recording.vehicles:
            out[v["vehicle_id"]] = services.register_vehicle(session, v["vehicle_id"])
        doc = services.DeviceImportFile.model_validate_json(
            (recording.path / "devices.json").read_bytes()
        )
        services.import_devices(session, doc)
    return out


async def test_replay_delivers_every_batch_once(client, recording, secrets):
    first = await replay(recording, client, "http://bibo.test", secrets)
    assert first.failures == []
    assert first.batches == sum(v["batches"] for v in recording.vehicles) > 50
    assert first.delivered == first.batches
    assert first.duplicates == 0
    again = await replay(recording, client, "http://bibo.test", secrets)
    assert again.duplicates == again.batches


async def test_wrong_secret_is_reported_not_raised(client, recording, secrets):
    wrong = {vid: b"x" * 32 for vid in secrets}
    result = await replay(recording, client, "http://bibo.test", wrong)
    assert result.delivered == 0
    assert len(result.failures) == result.batches
    assert "401" in result.failures[0]


async def test_missing_secret_is_named(client, recording):
    with pytest.raises(ReplayError, match="no secret for 1 vehicle"):
        await replay(recording, client, "http://bibo.test", {})


def test_secrets_file(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"RLG-1": "00ff"}), "utf-8")
    assert load_secrets(f) == {"RLG-1": b"\x00\xff"}
    f.write_text(json.dumps({"RLG-1": "zz"}), "utf-8")
    with pytest.raises(ReplayError, match="RLG-1: expected a hex secret"):
        load_secrets(f)
    with pytest.raises(ReplayError, match="no such file"):
        load_secrets(tmp_path / "nope.json")

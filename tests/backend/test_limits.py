"""Request size, batch length and rate limits answer 413/429 clearly; metrics and request
ids are there for the operator."""

from __future__ import annotations

import json
import time

from backend.const import MAX_SIGHTINGS_PER_BATCH, MAX_UPLOAD_BYTES
from backend.limits import RateLimiter
from onboard import wire
from tests.backend.conftest import batch_body, post_batch


def test_token_bucket_allows_bursts_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.allow("v") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("v") == 0.5
    assert limiter.allow("w") == 0.0  # keys are independent
    now[0] += 0.5
    assert limiter.allow("v") == 0.0


async def test_a_runaway_vehicle_gets_429_with_retry_after(app, client, vehicle):
    now = [0.0]
    app.state.vehicle_limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
    codes = [
        (await post_batch(client, vehicle, batch_body(seq=seq))).status_code for seq in range(3)
    ]
    assert codes == [200, 200, 429]
    r = await post_batch(client, vehicle, batch_body(seq=3))
    assert r.headers["Retry-After"] == "1"
    assert "too often" in r.json()["detail"]
    now[0] += 1.0
    assert (await post_batch(client, vehicle, batch_body(seq=3))).status_code == 200


async def test_a_stranger_cannot_use_up_a_vehicles_allowance(app, client, vehicle):
    app.state.vehicle_limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: 0.0)
    for seq in range(3):
        bad = await post_batch(client, vehicle, batch_body(seq=seq), secret=b"x" * 32)
        assert bad.status_code == 401
    assert (await post_batch(client, vehicle, batch_body())).status_code == 200


async def test_an_oversized_upload_is_413_before_it_is_read(client, vehicle):
    raw = b"x" * (MAX_UPLOAD_BYTES + 1)
    ts = int(time.time() * 1000)
    r = await client.post(
        f"/v1/vehicles/{vehicle.vehicle_id}/batches",
        content=raw,
        headers={wire.TIMESTAMP_HEADER: str(ts), wire.SIGNATURE_HEADER: "0" * 64},
    )
    assert r.status_code == 413


async def test_too_many_rows_in_a_batch_is_413_naming_the_field(client, vehicle):
    n = MAX_SIGHTINGS_PER_BATCH + 1
    body = batch_body()
    body["sightings"] = {
        "t": [1_795_421_200_000] * n,
        "token": ["ab" * 16] * n,
        "rssi": [-60] * n,
        "n": [1] * n,
        "tx": [None] * n,
    }
    r = await post_batch(client, vehicle, body, compress=True)
    assert r.status_code == 413
    assert r.json()["detail"][0]["loc"] == ["body", "sightings"]


async def test_signups_from_one_address_are_limited(app, client):
    app.state.signup_limiter = RateLimiter(rate=0.01, burst=2, clock=lambda: 0.0)
    codes = [
        (await client.post("/v1/passengers", json={"rider_category": "adult"})).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]


async def test_metrics_count_ingest_and_requests_carry_ids(client, vehicle):
    await post_batch(client, vehicle, batch_body())
    await post_batch(client, vehicle, batch_body())
    r = await client.get("/metrics")
    assert r.status_code == 200
    text = r.text
    assert 'bibo_ingest_batches_total{result="new"} 1.0' in text
    assert 'bibo_ingest_batches_total{result="duplicate"} 1.0' in text
    assert "bibo_ingest_sightings_total 9.0" in text
    assert "bibo_reconciliation_lag_seconds" in text
    assert 'route="/v1/vehicles/{vehicle_id}/batches"' in text  # templates, never ids
    health = await client.get("/v1/health", headers={"X-Request-ID": "abc-123"})
    assert health.headers["X-Request-ID"] == "abc-123"
    assert len((await client.get("/v1/health")).headers["X-Request-ID"]) == 16


def test_wait_time_asks_without_taking_and_take_charges():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.wait_time("v") for _ in range(5)] == [0.0] * 5
    limiter.take("v")
    limiter.take("v")
    assert limiter.wait_time("v") == 0.5
    # Requests that passed ``wait_time`` together all pay: the debt is waited out.
    limiter.take("v")
    assert limiter.wait_time("v") == 1.0
    assert limiter.allow("v") == 1.0
    now[0] += 1.0
    assert limiter.allow("v") == 0.0


async def test_replays_of_one_request_do_not_use_up_a_vehicles_allowance(app, client, vehicle):
    app.state.vehicle_limiter = RateLimiter(rate=0.001, burst=3, clock=time.monotonic)
    raw, captured, url = captured_request(vehicle)
    answers = [(await client.post(url, content=raw, headers=captured)) for _ in range(41)]
    assert [a.status_code for a in answers] == [200] * 41
    assert answers[0].json()["duplicate"] is False
    assert all(a.json() == {"inserted": 0, "duplicate": True} for a in answers[1:])
    # Two of the three tokens are left for the vehicle's own new batches ...
    assert (await post_batch(client, vehicle, batch_body(seq=2))).status_code == 200
    assert (await post_batch(client, vehicle, batch_body(seq=3))).status_code == 200
    # ... a new batch beyond the allowance is refused ...
    refused = await post_batch(client, vehicle, batch_body(seq=4))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    # ... while a replay is still answered as the duplicate it is.
    replay = await client.post(url, content=raw, headers=captured)
    assert replay.json() == {"inserted": 0, "duplicate": True}
    # A resend of a stored batch under the same identity but another body is still refused.
    other = batch_body(seq=2)
    other["sightings"]["rssi"] = [-70, -83, -59]
    conflict = await post_batch(client, vehicle, other)
    assert conflict.status_code == 422
    assert conflict.json()["detail"][0]["loc"] == ["body", "seq"]


async def test_a_refused_batch_costs_a_token_like_a_new_one(app, client, vehicle):
    app.state.vehicle_limiter = RateLimiter(rate=0.001, burst=2, clock=time.monotonic)
    invalid = batch_body(seq=1, window_ms=0)
    assert (await post_batch(client, vehicle, invalid)).status_code == 422
    assert (await post_batch(client, vehicle, batch_body(seq=1))).status_code == 200
    assert (await post_batch(client, vehicle, batch_body(seq=2))).status_code == 429


async def test_a_replay_loop_runs_out_of_resends_but_never_of_uploads(app, client, vehicle):
    app.state.vehicle_limiter = RateLimiter(rate=0.001, burst=2, clock=time.monotonic)
    app.state.resend_limiter = RateLimiter(rate=0.001, burst=5, clock=time.monotonic)
    raw, captured, url = captured_request(vehicle)
    answers = [(await client.post(url, content=raw, headers=captured)) for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 6 + [429] * 2
    assert "resends stored batches too often" in answers[-1].json()["detail"]
    # The vehicle's own next batch still goes through: replays cost its allowance nothing.
    assert (await post_batch(client, vehicle, batch_body(seq=2))).status_code == 200


def captured_request(vehicle) -> tuple[bytes, dict[str, str], str]:
    """One signed upload of batch 1 as an eavesdropper would capture it: body, headers, URL."""
    raw = json.dumps(batch_body(seq=1)).encode()
    ts = int(time.time() * 1000)
    headers = {
        "Content-Type": "application/json",
        wire.TIMESTAMP_HEADER: str(ts),
        wire.SIGNATURE_HEADER: wire.sign(vehicle.secret, ts, raw),
    }
    return raw, headers, f"/v1/vehicles/{vehicle.vehicle_id}/batches"

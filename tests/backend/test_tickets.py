"""The inspection ticket: a pinned test vector, every verdict an inspector acts on, key
rotation, the signed revocation list, the passenger routes and ``bibo inspect``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update

from backend import models
from backend.api.app import reconcile_dirty_units
from backend.cli import main as bibo
from backend.const import TICKET_CODE_SKEW_S, TICKET_CODE_STEP_S, TICKET_ENDED_GRACE
from backend.db import make_sessionmaker, transaction
from backend.maintenance.service import apply_retention
from backend.tickets import codec, keys, revocations
from backend.tickets.codec import State
from backend.timeutil import service_day_of
from tests.backend.conftest import post_batch, register_phone
from tests.backend.synth import DRIVE_MS, DWELL_MS, Rider, journey_batches

ISSUER_SEED = bytes(range(32))
TICKET_SEED = bytes([0x11] * 32)
NOON = 1_796_385_600
"""2026-12-04 12:00:00 UTC."""

VECTOR_TICKET = codec.Ticket(
    key_id="2026-12",
    ticket_id=bytes.fromhex("0123456789abcdef"),
    rider_ref=bytes.fromhex("fedcba9876543210"),
    rider_category="adult",
    provisional=False,
    issued_at=NOON,
    boarded_at=NOON - 60,
    valid_until=NOON + 3600,
    vehicle_id="RLG-4711",
    board_stop_id="de:05974:1001",
    companions=(("bike", 1), ("child", 2)),
    ticket_public_key=keys.public_bytes(TICKET_SEED),
)
VECTOR_BODY = (
    "42490107323032362d31320123456789abcdeffedcba987654321001006b12ab406b12ab046b12b950085"
    "24c472d343731310d64653a30353937343a313030310205010202d04ab232742bb4ab3a1368bd4615e4e6"
    "d0224ab71a016baf8520a332c9778737"
)
VECTOR_SIGNATURE = (
    "997b530110ed157c21d4b18c26d384e8f4d929d8c971c92d927457df74d16ffed07cc606d15040d18bfaab"
    "195dcfc8e1a47b6c7e62fd255faa935b8f8a4afe03"
)
VECTOR_STEP = 59_879_522
"""(NOON + 60) // 30."""
VECTOR_PAYLOAD = (
    "QkkBBzIwMjYtMTIBI0VniavN7_7cuph2VDIQAQBrEqtAaxKrBGsSuVAIUkxHLTQ3MTENZGU6MDU5NzQ6MTAwMQ"
    "IFAQIC0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzeZe1MBEO0VfCHUsYwm04To9Nkp2MlxyS2SdFff"
    "dNFv_tB8xgbRUEDRi_qrGV3PyOGke2x-Yv0lX6qTW4-KSv4DA5GwYlGJDbVsQZTLpOl8FeJbM16s06_D1Nzxn7"
    "RAsyvIJoLPeKWvI-hDR4-PPb8XlV6rk_hGqh_5qgcex4xpdTBw4Q0"
)
ISSUER_PUBLIC = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"


def issuer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(ISSUER_SEED)


def payload(ticket: codec.Ticket, at_s: float, key: Ed25519PrivateKey | None = None) -> str:
    signed = codec.sign_body(codec.encode_body(ticket), key or issuer())
    code_key = Ed25519PrivateKey.from_private_bytes(TICKET_SEED)
    return codec.b64url(codec.frame(signed, code_key, ticket.ticket_id, codec.step_of(at_s)))


KEYS = {"2026-12": codec.PublicKey("2026-12", bytes.fromhex(ISSUER_PUBLIC))}


# --- the test vector --------------------------------------------------------------------


def test_vector_pins_the_encoding_the_signatures_and_the_payload():
    body = codec.encode_body(VECTOR_TICKET)
    assert body.hex() == VECTOR_BODY
    assert keys.public_bytes(ISSUER_SEED).hex() == ISSUER_PUBLIC
    signed = codec.sign_body(body, issuer())
    assert signed[len(body) :].hex() == VECTOR_SIGNATURE
    assert codec.step_of(NOON + 60) == VECTOR_STEP
    assert payload(VECTOR_TICKET, NOON + 60) == VECTOR_PAYLOAD


def test_vector_verifies_and_decodes_to_its_ticket():
    verdict = codec.verify(VECTOR_PAYLOAD, KEYS, NOON + 60, "RLG-4711")
    assert verdict.state is State.VALID, verdict.reason
    assert verdict.ticket == VECTOR_TICKET
    assert verdict.step == VECTOR_STEP


# --- every verdict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticket", "shown_at", "checked_at", "vehicle", "revoked", "state"),
    [
        (VECTOR_TICKET, NOON, NOON, "RLG-4711", (), State.VALID),
        (VECTOR_TICKET, NOON, NOON + 29, None, (), State.VALID),  # vehicle not checked
        (VECTOR_TICKET, NOON, NOON + 35, "RLG-4711", (), State.VALID),  # clocks 5 s apart
        (VECTOR_TICKET, NOON + 30, NOON + 25, "RLG-4711", (), State.VALID),  # phone ahead 5 s
        (
            dataclasses.replace(VECTOR_TICKET, provisional=True),
            NOON,
            NOON,
            "RLG-4711",
            (),
            State.PROVISIONAL,
        ),
        (VECTOR_TICKET, NOON, NOON + 36, "RLG-4711", (), State.STALE),  # a screenshot
        (VECTOR_TICKET, NOON + 29, NOON + 66, "RLG-4711", (), State.STALE),  # 37 s later
        (VECTOR_TICKET, NOON + 30, NOON + 24, "RLG-4711", (), State.STALE),  # 6 s ahead
        (VECTOR_TICKET, NOON + 90, NOON, "RLG-4711", (), State.STALE),  # code from the future
        (VECTOR_TICKET, NOON, NOON, "VKU-0815", (), State.WRONG_VEHICLE),
        (VECTOR_TICKET, NOON + 3601, NOON + 3601, "RLG-4711", (), State.EXPIRED),
        (
            VECTOR_TICKET,
            NOON,
            NOON,
            "RLG-4711",
            {VECTOR_TICKET.ticket_id},
            State.REVOKED,
        ),
    ],
)
def test_each_state_an_inspector_acts_on(ticket, shown_at, checked_at, vehicle, revoked, state):
    verdict = codec.verify(payload(ticket, shown_at), KEYS, checked_at, vehicle, revoked)
    assert verdict.state is state, verdict.reason
    assert verdict.state.accepted == (state in (State.VALID, State.PROVISIONAL))


@given(
    shown_at=st.floats(NOON, NOON + 2500),
    later=st.floats(0, 500),
    skew=st.floats(-TICKET_CODE_SKEW_S, TICKET_CODE_SKEW_S),
)
@settings(max_examples=300, deadline=None)
def test_a_live_code_is_fresh_and_a_screenshot_goes_stale(shown_at, later, skew):
    """The app shows the code of its clock's current step; an inspector whose clock is at
    most ``TICKET_CODE_SKEW_S`` off accepts it right away, and refuses the same picture
    once its step and that allowance have passed: with clocks that agree 35 s after it was
    taken at the latest, with clocks the whole allowance apart 40 s."""
    shown = payload(VECTOR_TICKET, shown_at)
    now = shown_at + skew
    assert codec.verify(shown, KEYS, now).state is State.VALID
    checked = codec.verify(shown, KEYS, now + later).state
    if later > TICKET_CODE_STEP_S + 2 * TICKET_CODE_SKEW_S:
        assert checked is State.STALE
    if shown_at + later + skew < (codec.step_of(shown_at) + 1) * TICKET_CODE_STEP_S:
        assert checked is State.VALID  # still the code's own step on the phone's clock


def test_a_code_made_without_the_tickets_key_is_refused():
    signed = codec.sign_body(codec.encode_body(VECTOR_TICKET), issuer())
    stranger = Ed25519PrivateKey.from_private_bytes(bytes([0x22] * 32))
    forged = codec.frame(signed, stranger, VECTOR_TICKET.ticket_id, codec.step_of(NOON))
    verdict = codec.verify(codec.b64url(forged), KEYS, NOON)
    assert verdict.state is State.INVALID
    assert "time code" in verdict.reason


def test_a_screenshot_cannot_be_moved_to_the_current_step():
    """Changing the step of an old frame breaks its time code: the code signs the step."""
    old = codec.from_b64url(payload(VECTOR_TICKET, NOON))
    at = len(old) - 68
    moved = old[:at] + codec.step_of(NOON + 300).to_bytes(4, "big") + old[at + 4 :]
    assert codec.verify(codec.b64url(moved), KEYS, NOON + 300).state is State.INVALID


@pytest.mark.parametrize(
    "text", ["", "not base64!", "QkkB", VECTOR_PAYLOAD + "AA", "A" * 311, VECTOR_PAYLOAD[:-4]]
)
def test_what_is_not_a_ticket_is_invalid_with_a_reason(text):
    verdict = codec.verify(text, KEYS, NOON)
    assert verdict.state is State.INVALID
    assert verdict.reason


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_tampered_byte_is_refused(data):
    frame = bytearray(codec.from_b64url(VECTOR_PAYLOAD))
    index = data.draw(st.integers(0, len(frame) - 1), label="byte")
    flip = data.draw(st.integers(1, 255), label="xor")
    frame[index] ^= flip
    verdict = codec.verify(codec.b64url(bytes(frame)), KEYS, NOON + 60, "RLG-4711")
    assert verdict.state is State.INVALID


_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=16)


@settings(max_examples=200, deadline=None)
@given(
    ticket=st.builds(
        codec.Ticket,
        key_id=st.from_regex(r"[A-Za-z0-9._-]{1,16}", fullmatch=True),
        ticket_id=st.binary(min_size=8, max_size=8),
        rider_ref=st.binary(min_size=8, max_size=8),
        rider_category=st.sampled_from(["adult", "child", "preschool", "infant"]),
        provisional=st.booleans(),
        issued_at=st.integers(0, 2**32 - 1),
        boarded_at=st.integers(0, 2**32 - 1),
        valid_until=st.integers(0, 2**32 - 1),
        vehicle_id=_TEXT,
        board_stop_id=_TEXT,
        companions=st.lists(
            st.tuples(st.sampled_from(sorted(codec.CATEGORY_CODES)), st.integers(1, 255)),
            max_size=5,
        ).map(tuple),
        ticket_public_key=st.binary(min_size=32, max_size=32),
    )
)
def test_every_ticket_decodes_to_itself(ticket):
    signed = codec.sign_body(codec.encode_body(ticket), issuer())
    frame = codec.frame(signed, Ed25519PrivateKey.from_private_bytes(TICKET_SEED), b"x" * 8, 7)
    shown = codec.decode(frame)
    assert shown.ticket == ticket
    assert shown.step == 7


# --- keys and rotation ------------------------------------------------------------------


def test_rotation_keeps_old_tickets_valid_until_the_old_key_retires():
    now = dt.datetime.fromtimestamp(NOON, dt.UTC)
    first = keys.generate("2026-12", ISSUER_SEED)
    old_ticket = payload(VECTOR_TICKET, NOON)
    rotated = keys.rotate(first, "2027-01", now, seed=bytes([0x33] * 32))
    assert rotated.signing == "2027-01"
    assert "2026-12" not in rotated.seeds  # the old private key is dropped
    retire_at = rotated.keys["2026-12"].retire_at
    assert retire_at is not None
    assert retire_at > VECTOR_TICKET.valid_until

    published = keys.from_json(json.loads(json.dumps(keys.to_json(rotated, private=False))))
    assert published.seeds == {}
    assert published.signing is None
    assert codec.verify(old_ticket, published.keys, NOON).state is State.VALID
    kid, new_key = rotated.signer()
    new_ticket = payload(dataclasses.replace(VECTOR_TICKET, key_id=kid), NOON, new_key)
    assert codec.verify(new_ticket, published.keys, NOON).state is State.VALID

    # After the old key retires its signatures are refused, even on a ticket still in date.
    late = dataclasses.replace(VECTOR_TICKET, valid_until=retire_at + 600)
    verdict = codec.verify(payload(late, retire_at), published.keys, retire_at)
    assert verdict.state is State.INVALID
    assert "retired" in verdict.reason
    # A key id nobody published is refused.
    stranger = dataclasses.replace(VECTOR_TICKET, key_id="2099-01")
    verdict = codec.verify(payload(stranger, NOON), published.keys, NOON)
    assert verdict.state is State.INVALID
    assert "unknown key id" in verdict.reason


def test_a_private_keyset_round_trips_and_a_wrong_seed_is_refused():
    keyset = keys.generate("k1", ISSUER_SEED)
    doc = keys.to_json(keyset, private=True)
    assert keys.from_json(doc) == keyset
    doc["keys"][0]["seed"] = codec.b64url(bytes(32))
    with pytest.raises(keys.KeysetError, match=r"keys\[0\]\.seed"):
        keys.from_json(doc)
    with pytest.raises(keys.KeysetError, match="version"):
        keys.from_json({"keys": []})


def test_a_revocation_list_is_read_only_with_a_good_signature():
    now = dt.datetime.fromtimestamp(NOON, dt.UTC)
    listed = revocations.sign(
        [revocations.Revoked(VECTOR_TICKET.ticket_id, "trip_cancelled", NOON + 3600)],
        NOON,
        "2026-12",
        issuer(),
    )
    read = revocations.read(listed, KEYS, now.timestamp())
    assert read.ticket_ids() == {VECTOR_TICKET.ticket_id}
    forged = dict(listed, document=codec.b64url(b'{"version":1,"issued_at":0,"revoked":[]}'))
    with pytest.raises(revocations.RevocationListError, match="signature"):
        revocations.read(forged, KEYS, now.timestamp())
    # A ticket's signature cannot pass as a list's: each is signed under its own label.
    body = codec.encode_body(VECTOR_TICKET)
    passed_off = dict(
        listed, document=codec.b64url(body), signature=codec.b64url(bytes.fromhex(VECTOR_SIGNATURE))
    )
    with pytest.raises(revocations.RevocationListError):
        revocations.read(passed_off, KEYS, now.timestamp())


# --- the passenger's routes -------------------------------------------------------------

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture
def clock(app):
    app.state.clock = lambda: NOW
    return NOW


def ride(
    engine,
    phone,
    *,
    status: str = "open",
    confidence: float = 0.97,
    stops: int = 3,
    trip_id: str | None = None,
    vehicle_id: str = "RLG-4711",
) -> str:
    board = NOW_MS - 8 * 60_000
    trip_id = trip_id or f"trp_{phone.device_id[-8:]}"
    with transaction(make_sessionmaker(engine)) as session:
        session.add(
            models.Trip(
                trip_id=trip_id,
                service_day=service_day_of(board),
                device_id=phone.device_id,
                passenger_id=phone.passenger_id,
                vehicle_id=vehicle_id,
                journey_id="R61-0712",
                line="R61",
                board_stop_id="de:05974:1001",
                board_time=board,
                alight_stop_id="de:05974:1003",
                alight_time=NOW_MS,
                confidence=confidence,
                stops_travelled=stops,
                status=status,
            )
        )
    return trip_id


async def public_keys(client) -> dict[str, codec.PublicKey]:
    r = await client.get("/v1/inspect/keys")
    assert r.status_code == 200
    assert all("seed" not in k for k in r.json()["keys"])
    return dict(keys.from_json(r.json()).keys)


async def revoked_ids(client, keyset) -> frozenset[bytes]:
    r = await client.get("/v1/inspect/revocations")
    assert r.status_code == 200
    return revocations.read(r.json(), keyset, NOW.timestamp()).ticket_ids()


async def test_a_rider_on_board_gets_a_ticket_an_inspector_verifies(client, engine, phone, clock):
    ride(engine, phone)
    r = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket", headers=phone.auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    ticket = r.json()
    assert ticket["state"] == "valid"
    assert ticket["board_stop_name"] == "Soest, Bahnhof"
    assert ticket["valid_until"] == NOW_MS + 3_600_000
    assert ticket["refresh_at_s"] == (ticket["step"] + 1) * 30
    assert phone.passenger_id not in json.dumps(ticket["payload"])
    keyset = await public_keys(client)
    verdict = codec.verify(ticket["payload"], keyset, NOW.timestamp(), "RLG-4711")
    assert verdict.state is State.VALID, verdict.reason
    assert verdict.ticket is not None
    assert verdict.ticket.ticket_id.hex() == ticket["ticket_id"]
    assert verdict.ticket.rider_ref.hex() not in phone.passenger_id
    # The phone makes later codes itself with the time key: the signed part stays.
    signed = codec.from_b64url(ticket["signed_ticket"])
    key = Ed25519PrivateKey.from_private_bytes(codec.from_b64url(ticket["time_key"]))
    later = NOW.timestamp() + 300
    own = codec.frame(signed, key, verdict.ticket.ticket_id, codec.step_of(later))
    assert codec.verify(codec.b64url(own), keyset, later).state is State.VALID
    # 5 minutes later the fetched payload is a screenshot.
    assert codec.verify(ticket["payload"], keyset, later).state is State.STALE

    svg = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket.svg", headers=phone.auth)
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<svg")
    assert "<title>" in svg.text


async def test_the_same_ride_keeps_its_ticket_and_a_late_fetch_extends_it(
    client, engine, phone, app
):
    ride(engine, phone)
    url = f"/v1/passengers/{phone.passenger_id}/ticket"
    app.state.clock = lambda: NOW
    first = (await client.get(url, headers=phone.auth)).json()
    app.state.clock = lambda: NOW + dt.timedelta(minutes=10)
    same = (await client.get(url, headers=phone.auth)).json()
    assert same["ticket_id"] == first["ticket_id"]
    assert same["signed_ticket"] == first["signed_ticket"]  # nothing changed: same bytes
    app.state.clock = lambda: NOW + dt.timedelta(minutes=40)
    later = (await client.get(url, headers=phone.auth)).json()
    assert later["ticket_id"] == first["ticket_id"]
    assert later["valid_until"] == NOW_MS + 100 * 60_000


@pytest.mark.parametrize(("confidence", "stops"), [(0.97, 1), (0.5, 4)])
async def test_an_uncertain_be_in_gives_a_provisional_ticket(
    client, engine, phone, clock, confidence, stops
):
    ride(engine, phone, confidence=confidence, stops=stops)
    r = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket", headers=phone.auth)
    assert r.json()["state"] == "provisional"
    verdict = codec.verify(r.json()["payload"], await public_keys(client), NOW.timestamp())
    assert verdict.state is State.PROVISIONAL


async def test_no_ticket_when_not_on_board(client, engine, phone, clock):
    url = f"/v1/passengers/{phone.passenger_id}/ticket"
    r = await client.get(url, headers=phone.auth)
    assert r.status_code == 409
    assert "not on board" in r.json()["detail"]
    ride(engine, phone, status="closed")
    assert (await client.get(url, headers=phone.auth)).status_code == 409
    assert (await client.get(url + ".svg", headers=phone.auth)).status_code == 409


async def test_a_passenger_cannot_fetch_someone_elses_ticket(client, engine, phone, clock):
    other = register_phone(engine)
    ride(engine, other)
    for path in ("ticket", "ticket.svg"):
        url = f"/v1/passengers/{other.passenger_id}/{path}"
        assert (await client.get(url, headers=phone.auth)).status_code == 404
        assert (await client.get(url)).status_code == 401


async def test_no_keys_configured_means_no_tickets(client, engine, phone, clock, app):
    app.state.ticket_keys = None
    ride(engine, phone)
    r = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket", headers=phone.auth)
    assert r.status_code == 503
    assert "BIBO_TICKET_KEYS_FILE" in r.json()["detail"]
    assert (await client.get("/v1/inspect/keys")).status_code == 503


async def fetch_and_check(client, phone) -> tuple[str, dict[str, codec.PublicKey]]:
    r = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket", headers=phone.auth)
    keyset = await public_keys(client)
    assert codec.verify(r.json()["payload"], keyset, NOW.timestamp()).state is State.VALID
    return r.json()["payload"], keyset


async def test_a_cancelled_trip_revokes_its_ticket(client, engine, phone, clock):
    trip_id = ride(engine, phone)
    shown, keyset = await fetch_and_check(client, phone)
    with transaction(make_sessionmaker(engine)) as session:
        session.add(
            models.TripCorrection(
                trip_id=trip_id, cancelled=True, reason="not on the bus", operator_id=1
            )
        )
    verdict = codec.verify(shown, keyset, NOW.timestamp(), None, await revoked_ids(client, keyset))
    assert verdict.state is State.REVOKED


async def test_a_removed_device_revokes_its_ticket(client, engine, phone, clock):
    ride(engine, phone)
    shown, keyset = await fetch_and_check(client, phone)
    with transaction(make_sessionmaker(engine)) as session:
        session.execute(delete(models.Device).where(models.Device.device_id == phone.device_id))
    revoked = await revoked_ids(client, keyset)
    assert codec.verify(shown, keyset, NOW.timestamp(), None, revoked).state is State.REVOKED


async def test_a_ride_ended_revokes_its_ticket_after_the_grace(client, engine, phone, app):
    trip_id = ride(engine, phone)
    app.state.clock = lambda: NOW
    shown, keyset = await fetch_and_check(client, phone)
    # The rider gets off: the trip closes at NOW (its alighting time).
    with transaction(make_sessionmaker(engine)) as session:
        session.execute(
            update(models.Trip).where(models.Trip.trip_id == trip_id).values(status="closed")
        )

    async def revoked_at(when: dt.datetime) -> frozenset[bytes]:
        app.state.clock = lambda: when
        r = await client.get("/v1/inspect/revocations")
        listed = revocations.read(r.json(), keyset, when.timestamp())
        assert all(x.reason in revocations.REASONS for x in listed.revoked)
        return listed.ticket_ids()

    just_before = NOW + TICKET_ENDED_GRACE - dt.timedelta(seconds=1)
    assert await revoked_at(just_before) == frozenset()  # a be-out may still be withdrawn
    ended = await revoked_at(NOW + TICKET_ENDED_GRACE)
    later = (NOW + TICKET_ENDED_GRACE).timestamp()
    assert codec.verify(shown, keyset, later, None, ended).state is State.REVOKED
    # The be-out withdrawn (the rider was still on board): the ticket counts again.
    with transaction(make_sessionmaker(engine)) as session:
        session.execute(
            update(models.Trip).where(models.Trip.trip_id == trip_id).values(status="open")
        )
    assert await revoked_at(NOW + TICKET_ENDED_GRACE) == frozenset()


async def test_deleting_the_account_revokes_the_ticket_and_forgets_whose_it_was(
    client, engine, phone, clock
):
    ride(engine, phone)
    shown, keyset = await fetch_and_check(client, phone)
    other = register_phone(engine)
    ride(engine, other)
    kept, _ = await fetch_and_check(client, other)
    r = await client.delete(f"/v1/passengers/{phone.passenger_id}", headers=phone.auth)
    assert r.status_code == 204
    revoked = await revoked_ids(client, keyset)
    assert codec.verify(shown, keyset, NOW.timestamp(), None, revoked).state is State.REVOKED
    assert codec.verify(kept, keyset, NOW.timestamp(), None, revoked).state is State.VALID
    with transaction(make_sessionmaker(engine)) as session:
        rows = session.query(models.Ticket).all()
    gone = [t for t in rows if t.revoked_reason == "account_deleted"]
    assert len(gone) == 1
    assert (gone[0].passenger_id, gone[0].device_id, gone[0].time_key) == (None, None, None)


async def test_rotated_keys_on_the_server_keep_the_old_ticket_valid(client, engine, phone, app):
    app.state.clock = lambda: NOW
    app.state.ticket_keys = keys.generate("2026-12", ISSUER_SEED)
    ride(engine, phone)
    shown, _ = await fetch_and_check(client, phone)
    app.state.ticket_keys = keys.rotate(app.state.ticket_keys, "2027-01", NOW)
    keyset = await public_keys(client)
    assert set(keyset) == {"2026-12", "2027-01"}
    assert codec.verify(shown, keyset, NOW.timestamp()).state is State.VALID
    fresh = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket", headers=phone.auth)
    assert fresh.json()["key_id"] == "2027-01"
    assert codec.verify(fresh.json()["payload"], keyset, NOW.timestamp()).state is State.VALID


async def test_the_server_check_answers_the_same_verdicts(client, engine, phone, clock):
    ride(engine, phone)
    r = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket", headers=phone.auth)
    shown = r.json()["payload"]
    ok = await client.post("/v1/inspect/verify", json={"payload": shown, "vehicle_id": "RLG-4711"})
    assert ok.json()["state"] == "valid"
    assert ok.json()["accepted"] is True
    assert ok.json()["ticket"]["vehicle_id"] == "RLG-4711"
    wrong = await client.post("/v1/inspect/verify", json={"payload": shown, "vehicle_id": "X-1"})
    assert wrong.json()["state"] == "wrong_vehicle"
    assert wrong.json()["accepted"] is False
    junk = await client.post("/v1/inspect/verify", json={"payload": "QkkB"})
    assert junk.json()["state"] == "invalid"


# --- bibo inspect -------------------------------------------------------------------------


def test_cli_keys_generate_rotate_export_and_verify(tmp_path, capsys):
    private = tmp_path / "keys.json"
    assert bibo(["inspect", "keys", "generate", "--kid", "k1", "--out", str(private)]) == 0
    assert private.stat().st_mode & 0o777 == 0o600
    assert bibo(["inspect", "keys", "generate", "--kid", "k1", "--out", str(private)]) == 2
    assert "exists" in capsys.readouterr().err
    assert bibo(["inspect", "keys", "rotate", "--kid", "k2", "--file", str(private)]) == 0
    public = tmp_path / "public.json"
    assert bibo(["inspect", "keys", "export", "--file", str(private), "--out", str(public)]) == 0
    exported = json.loads(public.read_text())
    assert [k["key_id"] for k in exported["keys"]] == ["k1", "k2"]
    assert "seed" not in public.read_text()
    assert exported["keys"][0]["retire_at"] is not None


def test_cli_verify_prints_the_state_and_exits_by_it(tmp_path, capsys):
    public = tmp_path / "public.json"
    public.write_text(json.dumps(keys.to_json(keys.generate("2026-12", ISSUER_SEED), False)))
    at = "2026-12-04T12:01:00Z"
    args = ["inspect", "verify", VECTOR_PAYLOAD, "--keys", str(public), "--at", at]
    assert bibo([*args, "--vehicle", "RLG-4711"]) == 0
    out = capsys.readouterr().out
    assert "state: valid" in out
    assert "ticket_id: 0123456789abcdef" in out
    assert "companions: 1 bike, 2 child" in out
    assert bibo([*args, "--vehicle", "VKU-0815"]) == 1
    assert "state: wrong_vehicle" in capsys.readouterr().out
    stale = ["inspect", "verify", VECTOR_PAYLOAD, "--keys", str(public)]
    assert bibo([*stale, "--at", "2026-12-04T12:05:00Z"]) == 1
    assert "state: stale" in capsys.readouterr().out
    listed = tmp_path / "revocations.json"
    revoked = [revocations.Revoked(VECTOR_TICKET.ticket_id, "trip_cancelled", NOON + 3600)]
    listed.write_text(json.dumps(revocations.sign(revoked, NOON, "2026-12", issuer())))
    assert bibo([*args, "--revocations", str(listed)]) == 1
    assert "state: revoked" in capsys.readouterr().out
    assert bibo([*args[:-2], "--at", "noon"]) == 2
    assert capsys.readouterr().err.startswith("bibo inspect: --at")
    assert bibo(["inspect", "verify", VECTOR_PAYLOAD, "--keys", str(tmp_path / "no")]) == 2


async def test_retention_deletes_expired_tickets_with_the_raw_sightings(
    client, engine, phone, clock
):
    ride(engine, phone)
    await fetch_and_check(client, phone)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        apply_retention(session, NOW.date() + dt.timedelta(days=14), 14, 365, NOW)
        assert session.query(models.Ticket).count() == 1  # expired, but on a kept day
    with transaction(sessions) as session:
        apply_retention(session, NOW.date() + dt.timedelta(days=15), 14, 365, NOW)
        assert session.query(models.Ticket).count() == 0


@pytest.mark.parametrize(
    ("stretches_done", "state"),
    [(0, State.PROVISIONAL), (2, State.VALID)],  # just left the boarding stop; 2 stops on
)
async def test_a_reconciled_ride_under_way_gives_a_ticket(
    app, client, vehicle, engine, phone, stretches_done, state
):
    """From the bus's uploads to a ticket: the rider boarded at the first stop; a minute
    after the bus left it the be-in is provisional, two stops on it is certain."""
    stops = [f"de:05974:10{k:02d}" for k in range(1, 7)]
    t0 = 1_795_420_000_000
    now_ms = t0 + stretches_done * (DWELL_MS + DRIVE_MS) + DWELL_MS + 60_000
    batches = journey_batches("RLG-4711", "R61-1", stops, t0, [Rider(phone.device_key, 0, 5)])
    for body in batches:
        if body["sent_at"] <= now_ms:
            assert (await post_batch(client, vehicle, body)).status_code == 200
    reconcile_dirty_units(app)
    app.state.clock = lambda: dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    r = await client.get(f"/v1/passengers/{phone.passenger_id}/ticket", headers=phone.auth)
    assert r.status_code == 200, r.text
    assert r.json()["board_stop_id"] == stops[0]
    assert r.json()["state"] == state.value
    keyset = await public_keys(client)
    verdict = codec.verify(r.json()["payload"], keyset, now_ms / 1000, "RLG-4711")
    assert verdict.state is state, verdict.reason

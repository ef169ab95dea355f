"""The BLE payload, token, bus beacon and upload-key contracts (docs/contracts.md: BLE
payload, Token derivation, Bus beacon, Phone sightings upload) against pinned vectors."""

import datetime as dt
import hashlib
import math

import pytest
from pydantic import ValidationError

from onboard import wire

# Computed once with the contract's formula and committed: a change that alters tokens fails.
VECTOR_KEY = bytes(range(32))
VECTOR_UNIX_S = 1_795_421_234
VECTOR_INTERVAL = 2_992_368
VECTOR_TOKEN = "5ee447bf0f13886772223424f2880149"


def test_interval_of_uses_600_second_intervals():
    assert wire.interval_of(VECTOR_UNIX_S * 1000) == VECTOR_INTERVAL
    assert wire.interval_of(VECTOR_INTERVAL * 600_000) == VECTOR_INTERVAL
    assert wire.interval_of(VECTOR_INTERVAL * 600_000 - 1) == VECTOR_INTERVAL - 1


def test_token_matches_the_pinned_vector():
    assert wire.token_for_interval(VECTOR_KEY, VECTOR_INTERVAL).hex() == VECTOR_TOKEN


def test_tokens_differ_between_intervals_and_keys():
    a = wire.token_for_interval(VECTOR_KEY, VECTOR_INTERVAL)
    assert a != wire.token_for_interval(VECTOR_KEY, VECTOR_INTERVAL + 1)
    assert a != wire.token_for_interval(bytes(32), VECTOR_INTERVAL)
    assert len(a) == wire.TOKEN_BYTES


def test_token_refuses_a_short_key():
    with pytest.raises(ValueError, match="device_key"):
        wire.token_for_interval(b"short", 1)


def test_payload_round_trip_is_18_bytes_with_signed_tx_power():
    token = bytes.fromhex(VECTOR_TOKEN)
    data = wire.encode_payload(token, -8)
    assert len(data) == 18
    assert data[0] == 0x01
    assert data[-1] == 0xF8
    assert wire.decode_payload(data) == wire.Payload(token=token, tx_power=-8)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01" + bytes(16), wire.PayloadError.WRONG_LENGTH),
        (b"\x02" + bytes(17), wire.PayloadError.UNKNOWN_VERSION),
        (b"", wire.PayloadError.WRONG_LENGTH),
    ],
)
def test_malformed_payloads_are_reported_not_raised(data, reason):
    assert wire.decode_payload(data) is reason


def test_signature_is_hmac_over_timestamp_dot_body():
    secret, body = b"s" * 32, b'{"version":1}'
    sig = wire.sign(secret, 1795421234567, body)
    assert wire.signature_valid(secret, "1795421234567", body, sig)
    assert not wire.signature_valid(secret, "1795421234568", body, sig)
    assert not wire.signature_valid(secret, "1795421234567", body + b" ", sig)
    assert not wire.signature_valid(secret, "17954212345x7", body, sig)


T0 = 1_795_421_200_000


def test_sightings_arrays_must_have_equal_length():
    with pytest.raises(ValueError, match="same length"):
        wire.Sightings(t=[T0, T0 + 1], token=["0" * 32], rssi=[-60], n=[1], tx=[None])


def test_the_epoch_bounds_are_2020_and_2100():
    bounds = [wire.EARLIEST_EPOCH_MS, wire.LATEST_EPOCH_MS]
    years = [dt.datetime(y, 1, 1, tzinfo=dt.UTC).timestamp() * 1000 for y in (2020, 2100)]
    assert bounds == years


@pytest.mark.parametrize(
    "t", [wire.EARLIEST_EPOCH_MS - 1, 599_999, 0, wire.LATEST_EPOCH_MS + 1, 10**18, 2**63]
)
def test_times_outside_the_service_years_are_refused(t):
    with pytest.raises(ValidationError) as info:
        wire.DoorsOpenEvent(t=t)
    assert info.value.errors()[0]["loc"] == ("t",)


@pytest.mark.parametrize("t", [wire.EARLIEST_EPOCH_MS, T0, wire.LATEST_EPOCH_MS])
def test_times_inside_the_service_years_are_kept(t):
    assert wire.DoorsOpenEvent(t=t).t == t


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lat", math.inf),
        ("lat", math.nan),
        ("lat", 90.000001),
        ("lon", -math.inf),
        ("lon", 180.5),
        ("speed_mps", math.inf),
        ("speed_mps", 1e308),
        ("speed_mps", 70.01),
        ("speed_mps", -0.1),
    ],
)
def test_non_finite_and_unphysical_floats_are_refused(field, value):
    fields = {"t": T0, "lat": 51.57, "lon": 8.1, "speed_mps": 8.0} | {field: value}
    with pytest.raises(ValidationError) as info:
        wire.PositionEvent(**fields)
    assert info.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("boot_id", "boot\x00"),
        ("boot_id", "x" * 65),
        ("unit_id", "obu\u202e"),
        ("unit_id", "obu 1"),
        ("seq", 2**63),
        ("seq", -1),
    ],
)
def test_batch_ids_and_seq_stay_within_their_columns(field, value):
    fields = {
        "version": 1,
        "vehicle_id": "RLG-4711",
        "unit_id": "obu-4711-a",
        "boot_id": "5b0e1c1e-7d8a-4c2b-9a57-0f5f3a1f9e21",
        "seq": 2**63 - 1,
        "sent_at": T0,
        "window_ms": 1000,
    }
    assert wire.Batch(**fields).seq == 2**63 - 1
    with pytest.raises(ValidationError) as info:
        wire.Batch(**(fields | {field: value}))
    assert info.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    "stop_id", ["de:05974:" + "1" * 56, "de:05974:1001\x00", "de:\u0660\u0665\u0669\u0667\u0664:1"]
)
def test_stop_ids_are_ascii_dhids_within_their_column(stop_id):
    with pytest.raises(ValidationError):
        wire.ArrivalEvent(t=T0, stop_id=stop_id)


def test_sighting_counts_stay_within_one_window():
    row = {"t": [T0], "token": ["0" * 32], "rssi": [-60], "tx": [None]}
    assert wire.Sightings(**row, n=[wire.MAX_SIGHTING_N]).n == [wire.MAX_SIGHTING_N]
    with pytest.raises(ValidationError) as info:
        wire.Sightings(**row, n=[wire.MAX_SIGHTING_N + 1])
    assert info.value.errors()[0]["loc"] == ("n", 0)


@pytest.mark.parametrize(
    "header",
    [
        "\u00b2",  # superscript two: str.isdigit() is True, int() refuses it
        "1795421234567\u00b2",
        "\u0661\u0667\u0669\u0665",  # Arabic-Indic digits: int() takes them
        "\uff11\uff17\uff19\uff15",  # fullwidth digits
        "",
        "1" * 16,
        "-1",
        " 1795421234567",
    ],
)
def test_a_timestamp_is_ascii_digits_only(header):
    assert wire.parse_timestamp_header(header) is None
    assert not wire.signature_valid(b"s" * 32, header, b"{}", "0" * 64)


@pytest.mark.parametrize("signature", ["\u00e9" * 64, "\u0660" * 64, "g" * 64, "0" * 63, ""])
def test_a_malformed_signature_is_invalid_not_an_error(signature):
    assert not wire.signature_valid(b"s" * 32, "1795421234567", b"{}", signature)


def test_an_upper_case_signature_is_valid():
    sig = wire.sign(b"s" * 32, 1795421234567, b"{}")
    assert wire.signature_valid(b"s" * 32, "1795421234567", b"{}", sig.upper())
    assert wire.parse_timestamp_header("1795421234567") == 1795421234567


# --- Bus beacon and phone upload keys (docs/contracts.md, Bus beacon, Phone sightings upload)

VEHICLE_SECRET = bytes(range(32))
BEACON_INTERVAL = 2_991_000


def _hmac_by_hand(key: bytes, msg: bytes) -> bytes:
    """RFC 2104 spelt out with hashlib alone: an implementation independent of ``hmac``."""
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + msg).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).digest()


def test_beacon_key_and_id_match_the_pinned_vector():
    key = wire.beacon_key(VEHICLE_SECRET)
    assert key.hex() == "b6406654915692ad865abbd7aef5777c321c311ac84b47044c6701f44118a26a"
    assert wire.beacon_for_interval(key, BEACON_INTERVAL) == (19458, 43130)


def test_beacon_derivation_is_the_contract_s_hmac():
    key = _hmac_by_hand(VEHICLE_SECRET, b"BIBO-BEACON-KEY-v1")
    assert wire.beacon_key(VEHICLE_SECRET) == key
    for interval in (0, 1, BEACON_INTERVAL, 2**32 - 1):
        digest = _hmac_by_hand(key, b"BIBO-BEACON-v1" + interval.to_bytes(4, "big"))
        major, minor = wire.beacon_for_interval(key, interval)
        assert digest[:4] == major.to_bytes(2, "big") + minor.to_bytes(2, "big")


def test_beacon_ids_rotate_with_the_interval_and_differ_between_vehicles():
    a, b = wire.beacon_key(VEHICLE_SECRET), wire.beacon_key(bytes(31) + b"\1")
    ids = {wire.beacon_for_interval(a, i) for i in range(BEACON_INTERVAL, BEACON_INTERVAL + 50)}
    assert len(ids) == 50
    assert wire.beacon_for_interval(a, BEACON_INTERVAL) != wire.beacon_for_interval(
        b, BEACON_INTERVAL
    )


def test_beacon_derivation_refuses_what_is_not_a_key():
    with pytest.raises(ValueError, match="vehicle_secret"):
        wire.beacon_key(b"")
    with pytest.raises(ValueError, match="beacon key"):
        wire.beacon_for_interval(b"short", 1)


def test_ibeacon_round_trip_is_the_23_byte_manufacturer_data():
    beacon = wire.IBeacon(
        proximity_uuid=wire.DEFAULT_PROXIMITY_UUID, major=19458, minor=43130, measured_power=-59
    )
    data = wire.encode_ibeacon(beacon)
    assert len(data) == wire.IBEACON_BYTES == 23
    assert data.hex() == "02159d1c0a595b1e4c4b8b1e0000b1b0b1b04c02a87ac5"
    assert wire.decode_ibeacon(data) == beacon


@pytest.mark.parametrize(
    "data", [b"", b"\x02\x15" + bytes(20), b"\x02\x16" + bytes(21), b"\x02\x15" + bytes(22)]
)
def test_what_is_not_an_ibeacon_decodes_to_none(data):
    assert wire.decode_ibeacon(data) is None


def test_upload_key_is_the_contract_s_hmac_and_not_the_token_key():
    key = bytes(range(32, 64))
    assert wire.upload_key(key) == _hmac_by_hand(key, b"BIBO-UPLOAD-v1")
    assert wire.upload_key(key) != key
    with pytest.raises(ValueError, match="device_key"):
        wire.upload_key(bytes(16))


T = VECTOR_UNIX_S * 1000


def _phone_batch(**beacons):
    columns = {"t": [T], "major": [1], "minor": [2], "rssi": [-70], "n": [1]} | beacons
    return {
        "version": 1,
        "device_id": "dev_1",
        "batch_id": "0b6f7a52-2a4e-4f0e-9d7e-4c1f5d3a9b10",
        "sent_at": T,
        "platform": "ios",
        "beacons": columns,
        "regions": [{"t": T, "type": "enter"}],
        "activity": [{"t": T, "type": "automotive"}],
    }


def test_a_phone_batch_as_the_contract_shows_it_parses():
    batch = wire.PhoneBatch.model_validate(_phone_batch())
    assert len(batch.beacons) == 1
    assert batch.regions[0].type == "enter"


@pytest.mark.parametrize(
    ("beacons", "field"),
    [
        ({"major": [70_000]}, "major"),
        ({"minor": [-1]}, "minor"),
        ({"rssi": [-70, -71]}, "beacons"),
        ({"n": [0]}, "n"),
        ({"t": [0]}, "t"),
    ],
)
def test_a_bad_phone_batch_names_the_field(beacons, field):
    with pytest.raises(ValidationError) as excinfo:
        wire.PhoneBatch.model_validate(_phone_batch(**beacons))
    assert field in str(excinfo.value)


@pytest.mark.parametrize("interval", [-1, 2**32])
def test_a_beacon_interval_outside_four_bytes_is_refused(interval):
    with pytest.raises(ValueError, match="interval"):
        wire.beacon_for_interval(wire.beacon_key(VEHICLE_SECRET), interval)


@pytest.mark.parametrize(
    "field", [{"major": "7"}, {"minor": 1.0}, {"measured_power": True}, {"major": 65_536}]
)
def test_ibeacon_fields_are_strict_integers_within_their_bytes(field):
    values = {"proximity_uuid": wire.DEFAULT_PROXIMITY_UUID, "major": 1, "minor": 2}
    with pytest.raises(ValidationError):
        wire.IBeacon.model_validate(values | {"measured_power": -59} | field)

"""The BLE payload and token contract (DESIGN §2) against pinned vectors."""

import pytest

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


def test_sightings_arrays_must_have_equal_length():
    with pytest.raises(ValueError, match="same length"):
        wire.Sightings(t=[1, 2], token=["0" * 32], rssi=[-60], n=[1], tx=[None])

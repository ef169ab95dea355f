"""The advertisement payload (docs/contracts.md, BLE payload) as the agent decodes it."""

from __future__ import annotations

import pytest

from onboard import wire
from tests.onboard.conftest import token


def test_good_payload_decodes_token_and_signed_tx_power():
    data = wire.encode_payload(token(1), -12)

    decoded = wire.decode_payload(data)

    assert decoded == wire.Payload(token=token(1), tx_power=-12)
    assert len(data) == wire.PAYLOAD_BYTES == 18
    assert data[0] == 0x01


@pytest.mark.parametrize("length", [0, 1, 17, 19, 31])
def test_wrong_length_is_a_reason_not_an_exception(length):
    assert wire.decode_payload(bytes(length)) is wire.PayloadError.WRONG_LENGTH


def test_unknown_version_is_a_reason():
    data = bytes([0x02]) + token(1) + bytes([0xF8])

    assert wire.decode_payload(data) is wire.PayloadError.UNKNOWN_VERSION


def test_token_is_the_truncated_hmac_of_the_interval():
    key = bytes(range(32))
    tokens = {wire.token_for_interval(key, i) for i in range(5)}

    assert len(tokens) == 5
    assert all(len(t) == wire.TOKEN_BYTES for t in tokens)

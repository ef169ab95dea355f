"""The scanner seam: the defaults factory, the fake scanner, passive patterns, adapters."""

from __future__ import annotations

import uuid
from typing import ClassVar

import pytest
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType

from onboard import scanner as scanner_module
from onboard import wire
from onboard.scanner import (
    AdvertisementData,
    BleakAdvertScanner,
    BLEDevice,
    FakeScanner,
    ScannerError,
    ScannerErrorReason,
    make_advertisement,
    passive_or_patterns,
    valid_adapter_name,
)
from tests.onboard.conftest import advert, token


def test_make_advertisement_builds_real_bleak_objects_with_defaults():
    data = wire.encode_payload(token(1), -8)

    device, adv = make_advertisement(
        address="AA:BB:CC:DD:EE:FF", service_data={wire.SERVICE_UUID: data}, rssi=-61
    )

    assert isinstance(device, BLEDevice)
    assert isinstance(adv, AdvertisementData)
    assert device.address == "AA:BB:CC:DD:EE:FF"
    assert adv.service_data == {wire.SERVICE_UUID: data}
    assert adv.service_uuids == [wire.SERVICE_UUID]
    assert adv.rssi == -61
    assert adv.tx_power is None
    assert adv.manufacturer_data == {}


def test_make_advertisement_passes_optional_fields():
    _, adv = make_advertisement(
        address="AA:BB:CC:DD:EE:FF",
        service_data={},
        rssi=-90,
        tx_power=4,
        local_name="phone",
        service_uuids=["0000180f-0000-1000-8000-00805f9b34fb"],
    )

    assert (adv.tx_power, adv.local_name) == (4, "phone")
    assert adv.service_uuids == ["0000180f-0000-1000-8000-00805f9b34fb"]


async def test_fake_scanner_delivers_only_while_started():
    scanner = FakeScanner()
    got: list[tuple[BLEDevice, AdvertisementData]] = []
    device, adv = advert(token(1))

    assert scanner.emit(device, adv) is False
    await scanner.start(lambda d, a: got.append((d, a)))
    assert scanner.emit(device, adv) is True
    await scanner.stop()
    assert scanner.emit(device, adv) is False

    assert got == [(device, adv)]


def test_passive_patterns_match_16_bit_service_data_little_endian():
    [pattern] = passive_or_patterns(wire.SERVICE_UUID)

    assert pattern == OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xb1\xff")


def test_passive_patterns_for_a_deployment_s_own_128_bit_uuid():
    own = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"

    [pattern] = passive_or_patterns(own.upper())

    assert pattern.ad_data_type is AdvertisementDataType.SERVICE_DATA_UUID128
    assert pattern.content_of_pattern == uuid.UUID(own).bytes[::-1]


@pytest.mark.parametrize(
    ("name", "ok"),
    [("hci0", True), ("hci12", True), ("hci", False), ("/dev/hci0", False), ("wlan0", False)],
)
def test_adapter_names(name, ok):
    assert valid_adapter_name(name) is ok


class RecordingBleakScanner:
    """Stands in for bleak's BleakScanner: records how it was built."""

    built: ClassVar[list[dict]] = []

    def __init__(self, **kwargs) -> None:
        RecordingBleakScanner.built.append(kwargs)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@pytest.mark.parametrize("mode", ["active", "passive"])
async def test_bleak_scanner_is_built_with_adapter_filter_and_patterns(monkeypatch, mode):
    RecordingBleakScanner.built = []
    monkeypatch.setattr(scanner_module, "BleakScanner", RecordingBleakScanner)
    scanner = BleakAdvertScanner(wire.SERVICE_UUID, adapter="hci1", scanning_mode=mode)

    await scanner.start(lambda d, a: None)
    with pytest.raises(ScannerError) as info:
        await scanner.start(lambda d, a: None)
    await scanner.stop()
    await scanner.stop()

    assert info.value.reason is ScannerErrorReason.ALREADY_STARTED
    [kwargs] = RecordingBleakScanner.built
    assert kwargs["service_uuids"] == [wire.SERVICE_UUID]
    assert kwargs["scanning_mode"] == mode
    assert kwargs["bluez"]["adapter"] == "hci1"
    if mode == "passive":
        assert kwargs["bluez"]["or_patterns"] == passive_or_patterns(wire.SERVICE_UUID)
    else:
        assert "or_patterns" not in kwargs["bluez"]


async def test_a_stalled_fake_scanner_drops_adverts_until_restarted():
    scanner = FakeScanner()
    got = []
    await scanner.start(lambda d, a: got.append(a))
    scanner.stall()

    assert scanner.emit(*advert(token(1))) is False
    await scanner.stop()
    await scanner.start(lambda d, a: got.append(a))
    assert scanner.emit(*advert(token(1))) is True
    scanner.stall()
    await scanner.reset_adapter()
    assert scanner.emit(*advert(token(1))) is True
    assert (len(got), scanner.starts, scanner.adapter_resets) == (2, 2, 1)

"""The scanner seam: the defaults factory and the fake scanner."""

from __future__ import annotations

from onboard import wire
from onboard.scanner import AdvertisementData, BLEDevice, FakeScanner, make_advertisement
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

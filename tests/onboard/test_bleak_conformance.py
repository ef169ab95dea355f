"""Unmocked: the installed bleak still has the names and fields the agent relies on.

If one of these fails after a bleak upgrade, ``onboard/scanner.py`` needs adapting.
No scan is started (CI has no Bluetooth adapter).
"""

from __future__ import annotations

import inspect
import typing

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError


def test_advertisement_data_has_the_fields_we_use():
    fields = AdvertisementData._fields

    for name in ("service_data", "service_uuids", "rssi", "tx_power", "local_name"):
        assert name in fields
    assert set(fields) == {
        "local_name",
        "manufacturer_data",
        "service_data",
        "service_uuids",
        "tx_power",
        "rssi",
        "platform_data",
    }, "make_advertisement must fill every field"


def test_advertisement_data_field_types():
    hints = typing.get_type_hints(AdvertisementData)

    assert hints["service_data"] == dict[str, bytes]
    assert hints["rssi"] is int
    assert hints["tx_power"] == typing.Optional[int]  # noqa: UP045 - bleak's own spelling


def test_ble_device_constructor_takes_address_name_details():
    params = inspect.signature(BLEDevice.__init__).parameters

    assert list(params)[1:4] == ["address", "name", "details"]


def test_bleak_scanner_accepts_our_keyword_arguments():
    params = inspect.signature(BleakScanner.__init__).parameters

    for name in ("detection_callback", "service_uuids", "scanning_mode", "bluez"):
        assert name in params
    assert params["scanning_mode"].default == "active"
    assert "adapter" in BlueZScannerArgs.__annotations__


def test_bleak_scanner_has_async_start_and_stop():
    assert inspect.iscoroutinefunction(BleakScanner.start)
    assert inspect.iscoroutinefunction(BleakScanner.stop)


def test_bleak_error_is_an_exception():
    assert issubclass(BleakError, Exception)


def test_bluez_passive_scanning_arguments_exist():
    assert "or_patterns" in BlueZScannerArgs.__annotations__
    assert OrPattern._fields == ("start_position", "ad_data_type", "content_of_pattern")
    assert AdvertisementDataType.SERVICE_DATA_UUID16 == 0x16
    assert AdvertisementDataType.SERVICE_DATA_UUID128 == 0x21
    assert "passive" in typing.get_args(
        typing.get_type_hints(BleakScanner.__init__)["scanning_mode"]
    )


def test_dbus_fast_has_what_the_adapter_reset_uses():
    from dbus_fast import BusType, Message, MessageType, Variant
    from dbus_fast.aio import MessageBus

    assert BusType.SYSTEM
    assert MessageType.ERROR
    assert inspect.iscoroutinefunction(MessageBus.connect)
    assert inspect.iscoroutinefunction(MessageBus.call)
    assert Variant("b", True).value is True
    message = Message(
        destination="org.bluez",
        path="/org/bluez/hci0",
        interface="org.freedesktop.DBus.Properties",
        member="Set",
        signature="ssv",
        body=["org.bluez.Adapter1", "Powered", Variant("b", False)],
    )
    assert (message.member, message.signature) == ("Set", "ssv")

"""Unmocked: ``BlueZAdvertiser`` speaks BlueZ's LE advertising API as BlueZ documents it.

Two layers. Always: the advertisement object we export matches BlueZ's documented
``org.bluez.LEAdvertisement1`` (``BLUEZ_XML`` below, written from BlueZ's
doc/org.bluez.LEAdvertisement.rst and doc/org.bluez.LEAdvertisingManager.rst). With
``dbus-daemon`` installed: the real advertiser, over real dbus-fast, on a private bus,
against a fake bluetoothd that owns ``org.bluez`` and, as BlueZ does, reads the
advertisement's properties back from its owner before answering ``RegisterAdvertisement``.
No Bluetooth adapter is involved.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.introspection import Interface, Node

from onboard import wire
from onboard.advertiser import (
    ADVERTISEMENT_PATH,
    AdvertiserError,
    AdvertiserErrorReason,
    BlueZAdvertiser,
)
from onboard.bluez_advertisement import LEAdvertisement

BLUEZ_XML = """
<node>
  <interface name="org.bluez.LEAdvertisingManager1">
    <method name="RegisterAdvertisement">
      <arg name="advertisement" type="o" direction="in"/>
      <arg name="options" type="a{sv}" direction="in"/>
    </method>
    <method name="UnregisterAdvertisement">
      <arg name="advertisement" type="o" direction="in"/>
    </method>
    <property name="ActiveInstances" type="y" access="read"/>
    <property name="SupportedInstances" type="y" access="read"/>
    <property name="SupportedIncludes" type="as" access="read"/>
    <property name="SupportedSecondaryChannels" type="as" access="read"/>
  </interface>
  <interface name="org.bluez.LEAdvertisement1">
    <method name="Release"/>
    <property name="Type" type="s" access="read"/>
    <property name="ServiceUUIDs" type="as" access="read"/>
    <property name="ManufacturerData" type="a{qv}" access="read"/>
    <property name="SolicitUUIDs" type="as" access="read"/>
    <property name="ServiceData" type="a{sv}" access="read"/>
    <property name="Data" type="a{yv}" access="read"/>
    <property name="Discoverable" type="b" access="read"/>
    <property name="DiscoverableTimeout" type="q" access="read"/>
    <property name="Includes" type="as" access="read"/>
    <property name="LocalName" type="s" access="read"/>
    <property name="Appearance" type="q" access="read"/>
    <property name="Duration" type="q" access="read"/>
    <property name="Timeout" type="q" access="read"/>
    <property name="SecondaryChannel" type="s" access="read"/>
    <property name="MinInterval" type="u" access="read"/>
    <property name="MaxInterval" type="u" access="read"/>
    <property name="TxPower" type="n" access="read"/>
  </interface>
</node>
"""
"""BlueZ's advertising interfaces (BlueZ 5.x documentation), as introspection XML."""

ADVERTISEMENT_TYPES = {"broadcast", "peripheral"}
"""The ``Type`` values BlueZ documents."""

MANAGER = "org.bluez.LEAdvertisingManager1"
ADVERTISEMENT = "org.bluez.LEAdvertisement1"
ADAPTER_PATH = "/org/bluez/hci0"

BEACON = wire.IBeacon(
    proximity_uuid=wire.DEFAULT_PROXIMITY_UUID, major=0x1234, minor=0xBEEF, measured_power=-59
)
ROTATED = BEACON.model_copy(update={"major": 0x0F0F, "minor": 0x0001})


def documented(name: str) -> Interface:
    [interface] = [i for i in Node.parse(BLUEZ_XML).interfaces if i.name == name]
    return interface


def in_signature(interface: Interface, method: str) -> str:
    [m] = [m for m in interface.methods if m.name == method]
    return "".join(arg.signature for arg in m.in_args)


def assert_conforms(exported: Interface) -> None:
    """Every method and property we export is BlueZ's, with BlueZ's types."""
    reference = documented(ADVERTISEMENT)
    assert exported.name == ADVERTISEMENT
    properties = {p.name: (p.signature, p.access.value) for p in reference.properties}
    for prop in exported.properties:
        assert (prop.signature, prop.access.value) == properties[prop.name], prop.name
    methods = {m.name: [a.signature for a in m.in_args + m.out_args] for m in reference.methods}
    for method in exported.methods:
        assert [a.signature for a in method.in_args + method.out_args] == methods[method.name]
    assert {p.name for p in exported.properties} == {"Type", "ManufacturerData"}
    assert {m.name for m in exported.methods} == {"Release"}


def test_the_exported_advertisement_matches_bluez_s_documented_interface():
    advertisement = LEAdvertisement(lambda: None)

    assert_conforms(advertisement.introspect())
    assert advertisement.Type in ADVERTISEMENT_TYPES


# --- against a fake bluetoothd on a private dbus-daemon -------------------------------------

DBUS_DAEMON = shutil.which("dbus-daemon")
needs_bus = pytest.mark.skipif(
    DBUS_DAEMON is None,
    reason="dbus-daemon is not installed (Debian package 'dbus'), so the D-Bus conversation"
    " with a fake BlueZ cannot run; the interface check against BlueZ's documentation still does",
)

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    {extra}
  </policy>
</busconfig>
"""

DENY_ADVERTISING = f'<deny send_destination="org.bluez" send_interface="{MANAGER}"/>'
"""A D-Bus policy like the system bus's for a user outside the ``bluetooth`` group."""


def start_bus(tmp_path: Path, extra_policy: str = "") -> tuple[subprocess.Popen[bytes], str]:
    assert DBUS_DAEMON is not None
    config = tmp_path / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=tmp_path / "bus.sock", extra=extra_policy))
    daemon = subprocess.Popen(
        [DBUS_DAEMON, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().decode().strip()
    assert address.startswith("unix:"), f"dbus-daemon did not start: {address!r}"
    return daemon, address


def stop_bus(daemon: subprocess.Popen[bytes]) -> None:
    daemon.terminate()
    daemon.wait()
    assert daemon.stdout is not None
    daemon.stdout.close()


@pytest.fixture
def bus_address(tmp_path: Path) -> Iterator[str]:
    daemon, address = start_bus(tmp_path)
    yield address
    stop_bus(daemon)


@dataclass
class FakeBlueZ:
    """bluetoothd's advertising manager on ``/org/bluez/hci0``, on a private bus.

    ``calls`` holds every method call it received; ``registered`` maps (owner, path) to the
    properties it read back. ``fail_with`` answers every call with that D-Bus error;
    ``silent`` never answers.
    """

    bus: MessageBus
    calls: list[Message] = field(default_factory=list)
    registered: dict[tuple[str, str], dict[str, Variant]] = field(default_factory=dict)
    fail_with: tuple[str, str] | None = None
    silent: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def handle(self, msg: Message) -> Message | bool | None:
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        if msg.path != ADAPTER_PATH:
            return Message.new_error(
                msg, "org.freedesktop.DBus.Error.UnknownObject", f"no object {msg.path}"
            )
        self.calls.append(msg)
        if self.silent:
            return True
        if self.fail_with is not None:
            return Message.new_error(msg, *self.fail_with)
        key = (str(msg.sender), str(msg.body[0]))
        if msg.member == "UnregisterAdvertisement":
            if self.registered.pop(key, None) is None:
                return Message.new_error(msg, "org.bluez.Error.DoesNotExist", "no such ad")
            return Message.new_method_return(msg)
        task = asyncio.create_task(self._register(msg, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _register(self, msg: Message, key: tuple[str, str]) -> None:
        if key in self.registered:
            self.bus.send(Message.new_error(msg, "org.bluez.Error.AlreadyExists", "exists"))
            return
        reply = await self.bus.call(
            Message(
                destination=key[0],
                path=key[1],
                interface="org.freedesktop.DBus.Properties",
                member="GetAll",
                signature="s",
                body=[ADVERTISEMENT],
            )
        )
        if reply.message_type is MessageType.ERROR:
            self.bus.send(Message.new_error(msg, "org.bluez.Error.InvalidArguments", "no props"))
            return
        self.registered[key] = reply.body[0]
        self.bus.send(Message.new_method_return(msg))

    async def call_advertisement(self, owner: str, interface: str, member: str) -> Message:
        """Call ``member`` on the advertisement object, as BlueZ does."""
        return await self.bus.call(
            Message(destination=owner, path=ADVERTISEMENT_PATH, interface=interface, member=member)
        )


@pytest.fixture
async def bluez(bus_address: str) -> AsyncIterator[FakeBlueZ]:
    bus = await MessageBus(bus_address=bus_address).connect()
    await bus.request_name("org.bluez")
    fake = FakeBlueZ(bus)
    bus.add_message_handler(fake.handle)
    yield fake
    bus.disconnect()


def members(fake: FakeBlueZ) -> list[tuple[str | None, str | None, Any]]:
    return [(m.member, m.signature, m.body) for m in fake.calls]


def ibeacon_properties(beacon: wire.IBeacon) -> dict[str, Variant]:
    data = Variant("ay", wire.encode_ibeacon(beacon))
    return {
        "Type": Variant("s", "broadcast"),
        "ManufacturerData": Variant("a{qv}", {wire.APPLE_COMPANY_ID: data}),
    }


@needs_bus
async def test_register_is_the_documented_call_and_bluez_reads_the_ibeacon_back(bus_address, bluez):
    advertiser = BlueZAdvertiser("hci0", bus_address=bus_address)

    await advertiser.start(BEACON)

    [call] = bluez.calls
    assert (call.destination, call.path, call.interface) == ("org.bluez", ADAPTER_PATH, MANAGER)
    assert call.member == "RegisterAdvertisement"
    assert call.signature == in_signature(documented(MANAGER), "RegisterAdvertisement") == "oa{sv}"
    assert call.body == [ADVERTISEMENT_PATH, {}]
    [(owner, path)] = bluez.registered
    assert path == ADVERTISEMENT_PATH
    assert bluez.registered[owner, path] == ibeacon_properties(BEACON)
    assert advertiser.active

    xml = await bluez.call_advertisement(owner, "org.freedesktop.DBus.Introspectable", "Introspect")
    [exported] = [i for i in Node.parse(xml.body[0]).interfaces if i.name == ADVERTISEMENT]
    assert_conforms(exported)
    await advertiser.stop()


@needs_bus
async def test_a_new_beacon_is_registered_again_and_stop_unregisters(bus_address, bluez):
    advertiser = BlueZAdvertiser("hci0", bus_address=bus_address)

    await advertiser.start(BEACON)
    await advertiser.start(ROTATED)

    unregister = in_signature(documented(MANAGER), "UnregisterAdvertisement")
    assert members(bluez) == [
        ("RegisterAdvertisement", "oa{sv}", [ADVERTISEMENT_PATH, {}]),
        ("UnregisterAdvertisement", unregister, [ADVERTISEMENT_PATH]),
        ("RegisterAdvertisement", "oa{sv}", [ADVERTISEMENT_PATH, {}]),
    ]
    assert list(bluez.registered.values()) == [ibeacon_properties(ROTATED)]

    await advertiser.stop()
    await advertiser.stop()

    assert bluez.registered == {}
    assert members(bluez)[-1] == ("UnregisterAdvertisement", "o", [ADVERTISEMENT_PATH])
    assert not advertiser.active


@needs_bus
async def test_release_from_bluez_is_answered_and_marks_the_beacon_inactive(bus_address, bluez):
    advertiser = BlueZAdvertiser("hci0", bus_address=bus_address)
    await advertiser.start(BEACON)
    [(owner, _)] = bluez.registered

    reply = await bluez.call_advertisement(owner, ADVERTISEMENT, "Release")

    assert reply.message_type is MessageType.METHOD_RETURN
    assert not advertiser.active
    bluez.registered.clear()  # BlueZ forgets what it released
    await advertiser.start(ROTATED)
    assert advertiser.active
    assert members(bluez)[-1][0] == "RegisterAdvertisement"
    await advertiser.stop()


@needs_bus
@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("org.bluez.Error.NotPermitted", AdvertiserErrorReason.NOT_PERMITTED),
        ("org.bluez.Error.InvalidLength", AdvertiserErrorReason.REFUSED),
        ("org.bluez.Error.NotReady", AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE),
        ("org.bluez.Error.Failed", AdvertiserErrorReason.FAILED),
    ],
)
async def test_bluez_errors_are_classified(bus_address, bluez, error, reason):
    bluez.fail_with = (error, "refused by the fake")
    advertiser = BlueZAdvertiser("hci0", bus_address=bus_address)

    with pytest.raises(AdvertiserError) as info:
        await advertiser.start(BEACON)

    assert info.value.reason is reason
    assert f"RegisterAdvertisement on hci0 failed: {error}: refused by the fake" == str(info.value)
    assert not advertiser.active
    await advertiser.stop()


@needs_bus
async def test_no_bluetoothd_on_the_bus_is_bluetooth_unavailable(bus_address):
    advertiser = BlueZAdvertiser("hci0", bus_address=bus_address)

    with pytest.raises(AdvertiserError) as info:
        await advertiser.start(BEACON)

    assert info.value.reason is AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE
    assert "org.freedesktop.DBus.Error.ServiceUnknown" in str(info.value)
    await advertiser.stop()


@needs_bus
async def test_a_missing_adapter_is_bluetooth_unavailable(bus_address, bluez):
    advertiser = BlueZAdvertiser("hci9", bus_address=bus_address)

    with pytest.raises(AdvertiserError) as info:
        await advertiser.start(BEACON)

    assert info.value.reason is AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE
    assert "hci9" in str(info.value)
    await advertiser.stop()


async def test_no_d_bus_at_all_is_bluetooth_unavailable(tmp_path):
    advertiser = BlueZAdvertiser(bus_address=f"unix:path={tmp_path / 'absent.sock'}")

    with pytest.raises(AdvertiserError) as info:
        await advertiser.start(BEACON)

    assert info.value.reason is AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE
    assert "no system D-Bus" in str(info.value)


@needs_bus
async def test_a_bluez_that_never_answers_times_out_and_the_next_start_recovers(bus_address, bluez):
    bluez.silent = True
    advertiser = BlueZAdvertiser("hci0", bus_address=bus_address, call_timeout_s=0.2)

    with pytest.raises(AdvertiserError) as info:
        await advertiser.start(BEACON)
    assert info.value.reason is AdvertiserErrorReason.TIMEOUT

    bluez.silent = False
    advertiser.call_timeout_s = 10.0  # the recovery must not race a short time-out on a busy CI
    await advertiser.start(BEACON)

    assert [m for m, _, _ in members(bluez)] == [
        "RegisterAdvertisement",
        "UnregisterAdvertisement",  # it may have registered before the time-out
        "RegisterAdvertisement",
    ]
    assert list(bluez.registered.values()) == [ibeacon_properties(BEACON)]
    await advertiser.stop()


@needs_bus
async def test_a_d_bus_policy_refusing_us_is_not_permitted(tmp_path):
    daemon, address = start_bus(tmp_path, DENY_ADVERTISING)
    try:
        bus = await MessageBus(bus_address=address).connect()
        await bus.request_name("org.bluez")
        bus.add_message_handler(FakeBlueZ(bus).handle)
        advertiser = BlueZAdvertiser("hci0", bus_address=address)

        with pytest.raises(AdvertiserError) as info:
            await advertiser.start(BEACON)

        assert info.value.reason is AdvertiserErrorReason.NOT_PERMITTED
        assert "org.freedesktop.DBus.Error.AccessDenied" in str(info.value)
        await advertiser.stop()
        bus.disconnect()
    finally:
        stop_bus(daemon)

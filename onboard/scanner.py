"""The seam to the Bluetooth stack: the only module in bibo that imports bleak.

Everything else sees advertisements as bleak's own ``BLEDevice``/``AdvertisementData``
types re-exported from here, built for tests and the simulator by ``make_advertisement``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import uuid
from collections.abc import Callable
from typing import Literal, Protocol

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from onboard.const import ADAPTER_POWER_CYCLE_S

__all__ = [
    "AdvertCallback",
    "AdvertisementData",
    "BLEDevice",
    "BleakAdvertScanner",
    "FakeScanner",
    "Scanner",
    "ScannerError",
    "ScannerErrorReason",
    "make_advertisement",
    "passive_or_patterns",
    "valid_adapter_name",
]

_log = logging.getLogger(__name__)

AdvertCallback = Callable[[BLEDevice, AdvertisementData], None]
"""Called once per received advertisement, on the event loop thread; must not block."""

ScanningMode = Literal["active", "passive"]

_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
"""The Bluetooth base UUID: ``0000xxxx`` + this is a 16-bit UUID in full form."""

_ADAPTER_NAME = re.compile(r"^hci\d{1,3}$")


class ScannerErrorReason(enum.Enum):
    """Why scanning could not start or stop, or the adapter could not be reset."""

    BLUETOOTH_UNAVAILABLE = "bluetooth_unavailable"
    ALREADY_STARTED = "already_started"
    RESET_FAILED = "reset_failed"


class ScannerError(Exception):
    """Scanning failed; ``reason`` is structured, the message names the adapter."""

    def __init__(self, reason: ScannerErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Scanner(Protocol):
    """A source of advertisements: the real adapter or a fake fed by tests and the simulator."""

    async def start(self, callback: AdvertCallback) -> None:
        """Start delivering advertisements to ``callback``."""
        ...

    async def stop(self) -> None:
        """Stop delivering advertisements; safe to call when not started."""
        ...

    async def reset_adapter(self) -> None:
        """Power-cycle the Bluetooth adapter (while stopped); raises ``ScannerError``."""
        ...


def valid_adapter_name(name: str) -> bool:
    """Whether ``name`` is a BlueZ adapter name such as ``hci0``."""
    return _ADAPTER_NAME.match(name) is not None


def passive_or_patterns(service_uuid: str) -> list[OrPattern]:
    """BlueZ advertisement-monitor patterns matching service data for ``service_uuid``.

    A Service Data AD structure starts with the UUID in little-endian byte order: 2 bytes
    (type 0x16) for a UUID on the Bluetooth base, else 16 bytes (type 0x21).
    """
    canonical = str(uuid.UUID(service_uuid))
    if canonical.startswith("0000") and canonical.endswith(_BASE_UUID_SUFFIX):
        short = int(canonical[4:8], 16).to_bytes(2, "little")
        return [OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, short)]
    full = uuid.UUID(canonical).bytes[::-1]
    return [OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID128, full)]


class BleakAdvertScanner:
    """Scans one adapter for adverts carrying ``service_uuid`` with bleak.

    ``adapter`` is a BlueZ adapter name such as ``"hci0"`` (``None``: the system default).
    Active scanning is the default because BlueZ passive scanning needs the advertisement
    monitor API (BlueZ >= 5.56 with experimental features on, kernel >= 5.10) that many
    onboard units lack; ``"passive"`` scans with ``passive_or_patterns`` and saves the
    scan requests (and radio time) of active scanning.
    """

    def __init__(
        self,
        service_uuid: str,
        adapter: str | None = None,
        scanning_mode: ScanningMode = "active",
    ) -> None:
        self._service_uuid = service_uuid
        self._adapter = adapter
        self._scanning_mode: ScanningMode = scanning_mode
        self._scanner: BleakScanner | None = None

    async def start(self, callback: AdvertCallback) -> None:
        """Start scanning; raises ``ScannerError`` if the adapter is missing or unavailable."""
        if self._scanner is not None:
            raise ScannerError(ScannerErrorReason.ALREADY_STARTED, "scanner already started")
        # bleak 3 deprecates the top-level ``adapter`` kwarg in favour of ``bluez={"adapter"}``.
        bluez: BlueZScannerArgs = {}
        if self._adapter is not None:
            bluez["adapter"] = self._adapter
        if self._scanning_mode == "passive":
            bluez["or_patterns"] = list(passive_or_patterns(self._service_uuid))
        scanner = BleakScanner(
            detection_callback=callback,
            service_uuids=[self._service_uuid],
            scanning_mode=self._scanning_mode,
            bluez=bluez,
        )
        try:
            await scanner.start()
        except (BleakError, OSError) as exc:
            where = self._adapter or "default adapter"
            raise ScannerError(
                ScannerErrorReason.BLUETOOTH_UNAVAILABLE,
                f"cannot start BLE scanning on {where}: {exc}",
            ) from exc
        self._scanner = scanner
        _log.info("scanning started (adapter=%s, mode=%s)", self._adapter, self._scanning_mode)

    async def stop(self) -> None:
        """Stop scanning; errors while stopping are logged, not raised (we are shutting down)."""
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            await scanner.stop()
        except (BleakError, OSError) as exc:
            _log.warning("stopping BLE scan failed: %s", exc)

    async def reset_adapter(self) -> None:
        """Power the adapter off and on through BlueZ's D-Bus API (``Adapter1.Powered``).

        This clears a controller that stopped reporting adverts without an error, the
        failure the watchdog exists for. Needs permission to set adapter properties
        (root or the ``bluetooth`` group, as scanning does).
        """
        # dbus-fast is bleak's own D-Bus library on Linux; imported here so other
        # platforms never need it.
        from dbus_fast import BusType, Message, MessageType, Variant
        from dbus_fast.aio import MessageBus

        name = self._adapter or "hci0"
        try:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except (OSError, ValueError) as exc:
            raise ScannerError(
                ScannerErrorReason.RESET_FAILED, f"cannot reset {name}: no system D-Bus: {exc}"
            ) from exc
        try:
            for powered in (False, True):
                reply = await bus.call(
                    Message(
                        destination="org.bluez",
                        path=f"/org/bluez/{name}",
                        interface="org.freedesktop.DBus.Properties",
                        member="Set",
                        signature="ssv",
                        body=["org.bluez.Adapter1", "Powered", Variant("b", powered)],
                    )
                )
                if reply is None or reply.message_type == MessageType.ERROR:
                    error = reply.error_name if reply is not None else "no reply"
                    raise ScannerError(
                        ScannerErrorReason.RESET_FAILED,
                        f"cannot power {'on' if powered else 'off'} {name}: {error}",
                    )
                if not powered:
                    await asyncio.sleep(ADAPTER_POWER_CYCLE_S)
        finally:
            bus.disconnect()
        _log.warning("Bluetooth adapter %s power-cycled", name)


class FakeScanner:
    """A ``Scanner`` driven by hand: ``emit`` delivers an advert while started.

    ``stall`` imitates BlueZ silently dropping adverts while still "scanning"; a restart
    (``stop`` then ``start``) or an adapter reset clears it, as it does on a real unit.
    """

    def __init__(self) -> None:
        self._callback: AdvertCallback | None = None
        self._started = asyncio.Event()
        self.stalled = False
        self.starts = 0
        self.adapter_resets = 0

    @property
    def started(self) -> bool:
        """Whether ``start`` was called and ``stop`` was not since."""
        return self._callback is not None

    async def start(self, callback: AdvertCallback) -> None:
        """Remember ``callback``; adverts emitted from now on reach it."""
        self._callback = callback
        self.stalled = False
        self.starts += 1
        self._started.set()

    async def stop(self) -> None:
        """Forget the callback; later ``emit`` calls are dropped, like a stopped radio."""
        self._callback = None
        self._started.clear()

    async def reset_adapter(self) -> None:
        """Count the reset; clears a stall."""
        self.adapter_resets += 1
        self.stalled = False

    def stall(self) -> None:
        """From now on drop adverts while still looking started, until restarted."""
        self.stalled = True

    async def wait_started(self) -> None:
        """Return once ``start`` has been called (for a driver running ``Agent.run`` as a task)."""
        await self._started.wait()

    def emit(self, device: BLEDevice, adv: AdvertisementData) -> bool:
        """Deliver one advert; returns whether a started callback received it."""
        if self._callback is None or self.stalled:
            return False
        self._callback(device, adv)
        return True


def make_advertisement(
    *,
    address: str,
    service_data: dict[str, bytes],
    rssi: int,
    tx_power: int | None = None,
    local_name: str | None = None,
    service_uuids: list[str] | None = None,
) -> tuple[BLEDevice, AdvertisementData]:
    """Real bleak objects for one received advert, with defaults for the rest.

    ``rssi`` in dBm as the receiver measured it; ``tx_power`` in dBm is the optional
    advertised TX Power Level AD field (not bibo's calibrated value inside the payload).
    ``service_uuids`` defaults to the keys of ``service_data``, as a phone lists them.
    """
    uuids = list(service_data) if service_uuids is None else list(service_uuids)
    adv = AdvertisementData(
        local_name=local_name,
        manufacturer_data={},
        service_data=dict(service_data),
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=rssi,
        platform_data=(),
    )
    device = BLEDevice(address=address, name=local_name, details=None)
    return device, adv

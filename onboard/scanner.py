"""The seam to the Bluetooth stack: the only module in bibo that imports bleak.

Everything else sees advertisements as bleak's own ``BLEDevice``/``AdvertisementData``
types re-exported from here, built for tests and the simulator by ``make_advertisement``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import Literal, Protocol

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

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
]

_log = logging.getLogger(__name__)

AdvertCallback = Callable[[BLEDevice, AdvertisementData], None]
"""Called once per received advertisement, on the event loop thread; must not block."""

ScanningMode = Literal["active", "passive"]


class ScannerErrorReason(enum.Enum):
    """Why scanning could not start or stop."""

    BLUETOOTH_UNAVAILABLE = "bluetooth_unavailable"
    ALREADY_STARTED = "already_started"


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


class BleakAdvertScanner:
    """Scans one adapter for adverts carrying ``service_uuid`` with bleak.

    ``adapter`` is a BlueZ adapter name such as ``"hci0"`` (``None``: the system default).
    Active scanning is the default because BlueZ passive scanning needs advertisement
    monitor patterns and kernel support that many onboard units lack.
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


class FakeScanner:
    """A ``Scanner`` driven by hand: ``emit`` delivers an advert while started."""

    def __init__(self) -> None:
        self._callback: AdvertCallback | None = None
        self._started = asyncio.Event()

    @property
    def started(self) -> bool:
        """Whether ``start`` was called and ``stop`` was not since."""
        return self._callback is not None

    async def start(self, callback: AdvertCallback) -> None:
        """Remember ``callback``; adverts emitted from now on reach it."""
        self._callback = callback
        self._started.set()

    async def stop(self) -> None:
        """Forget the callback; later ``emit`` calls are dropped, like a stopped radio."""
        self._callback = None
        self._started.clear()

    async def wait_started(self) -> None:
        """Return once ``start`` has been called (for a driver running ``Agent.run`` as a task)."""
        await self._started.wait()

    def emit(self, device: BLEDevice, adv: AdvertisementData) -> bool:
        """Deliver one advert; returns whether a started callback received it."""
        if self._callback is None:
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

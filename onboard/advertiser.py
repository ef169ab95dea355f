"""The seam to BlueZ's LE advertising: the only module that registers advertisements.

``BlueZAdvertiser`` exports an ``org.bluez.LEAdvertisement1`` object
(``onboard/bluez_advertisement.py``) and registers it with the adapter's
``org.bluez.LEAdvertisingManager1`` over D-Bus with dbus-fast, bleak's own D-Bus library on
Linux. ``FakeAdvertiser`` stands in for it in tests and the simulator. What is advertised
when is decided by ``onboard/beacon.py``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from onboard import wire
from onboard.const import BLUEZ_CALL_TIMEOUT_S

if TYPE_CHECKING:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    from onboard.bluez_advertisement import LEAdvertisement

__all__ = [
    "ADVERTISEMENT_PATH",
    "AdvertiserError",
    "AdvertiserErrorReason",
    "BeaconAdvertiser",
    "BlueZAdvertiser",
    "FakeAdvertiser",
    "classify_dbus_error",
]

_log = logging.getLogger(__name__)

BLUEZ: Final = "org.bluez"
MANAGER_INTERFACE: Final = "org.bluez.LEAdvertisingManager1"
DEFAULT_ADAPTER: Final = "hci0"
"""The adapter advertised on when none is named; the scanner's adapter reset uses it too."""

ADVERTISEMENT_PATH: Final = "/org/bibo/beacon0"
"""Where bibo's advertisement object lives on its own D-Bus connection."""

_DOES_NOT_EXIST: Final = "org.bluez.Error.DoesNotExist"
"""``UnregisterAdvertisement`` of an advertisement BlueZ no longer holds: already gone."""


class AdvertiserErrorReason(enum.Enum):
    """Why BlueZ did not take (or keep) the advertisement; every reason is retried."""

    BLUETOOTH_UNAVAILABLE = "bluetooth_unavailable"
    """No system D-Bus, bluetoothd not running, no such adapter, or the adapter is off."""
    NOT_SUPPORTED = "not_supported"
    """The adapter or BlueZ has no LE advertising manager."""
    NOT_PERMITTED = "not_permitted"
    """D-Bus policy refuses us, or BlueZ does (e.g. its maximum of advertisements reached)."""
    REFUSED = "refused"
    """BlueZ finds the advertisement invalid (arguments, length): a bug on our side."""
    TIMEOUT = "timeout"
    """BlueZ did not answer in time."""
    FAILED = "failed"
    """Anything else BlueZ reported (e.g. the controller refused the command)."""


class AdvertiserError(Exception):
    """Advertising failed; ``reason`` is structured, the message names the adapter and error."""

    def __init__(self, reason: AdvertiserErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_REASONS: Final[dict[str, AdvertiserErrorReason]] = {
    "org.freedesktop.DBus.Error.ServiceUnknown": AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE,
    "org.freedesktop.DBus.Error.NameHasNoOwner": AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE,
    "org.freedesktop.DBus.Error.UnknownObject": AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE,
    "org.bluez.Error.NotReady": AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE,
    "org.freedesktop.DBus.Error.UnknownInterface": AdvertiserErrorReason.NOT_SUPPORTED,
    "org.freedesktop.DBus.Error.UnknownMethod": AdvertiserErrorReason.NOT_SUPPORTED,
    "org.bluez.Error.NotSupported": AdvertiserErrorReason.NOT_SUPPORTED,
    "org.freedesktop.DBus.Error.AccessDenied": AdvertiserErrorReason.NOT_PERMITTED,
    "org.bluez.Error.NotPermitted": AdvertiserErrorReason.NOT_PERMITTED,
    "org.bluez.Error.InvalidArguments": AdvertiserErrorReason.REFUSED,
    "org.bluez.Error.InvalidLength": AdvertiserErrorReason.REFUSED,
    "org.freedesktop.DBus.Error.NoReply": AdvertiserErrorReason.TIMEOUT,
    "org.freedesktop.DBus.Error.Timeout": AdvertiserErrorReason.TIMEOUT,
}


def classify_dbus_error(error_name: str) -> AdvertiserErrorReason:
    """The reason for a D-Bus error reply from the bus or BlueZ (unknown names: ``FAILED``)."""
    return _REASONS.get(error_name, AdvertiserErrorReason.FAILED)


class BeaconAdvertiser(Protocol):
    """Advertises one iBeacon on the adapter: BlueZ, or a fake for tests and the simulator."""

    @property
    def active(self) -> bool:
        """Whether the last ``start`` succeeded and nothing withdrew the beacon since."""
        ...

    async def start(self, beacon: wire.IBeacon) -> None:
        """Advertise ``beacon``, replacing what is advertised; raises ``AdvertiserError``.

        After an error nothing of ours is advertised.
        """
        ...

    async def stop(self) -> None:
        """Stop advertising; safe to call when not started, never raises."""
        ...


class BlueZAdvertiser:
    """Advertises through BlueZ's ``LEAdvertisingManager1`` on ``adapter`` (default hci0).

    Holds one D-Bus connection (the system bus, or ``bus_address``) with the advertisement
    object exported on it; ``start`` registers it, and registers again (unregister, then
    register) to change the beacon, because BlueZ reads an advertisement's properties only
    when it is registered. BlueZ drops the advertisement when the connection closes, so a
    crashed agent leaves nothing behind. Each ``start`` and ``stop`` gives BlueZ
    ``call_timeout_s`` in all. Needs permission to use ``LEAdvertisingManager1`` (root or the
    ``bluetooth`` group, as scanning does).
    """

    def __init__(
        self,
        adapter: str | None = None,
        *,
        bus_address: str | None = None,
        call_timeout_s: float = BLUEZ_CALL_TIMEOUT_S,
    ) -> None:
        self._adapter = adapter or DEFAULT_ADAPTER
        self._adapter_path = f"/org/bluez/{self._adapter}"
        self._bus_address = bus_address
        self.call_timeout_s = call_timeout_s
        """Seconds BlueZ gets for all the calls of one ``start`` or ``stop``."""
        self._bus: MessageBus | None = None
        self._advertisement: LEAdvertisement | None = None
        self._maybe_registered = False
        """Whether BlueZ may hold our registration (also after an answer we never got)."""
        self._active = False

    @property
    def active(self) -> bool:
        """Whether BlueZ confirmed the registration and has not released it since."""
        return self._active

    async def start(self, beacon: wire.IBeacon) -> None:
        """Register ``beacon`` with BlueZ, replacing our previous registration."""
        data = wire.encode_ibeacon(beacon)
        self._active = False
        try:
            async with asyncio.timeout(self.call_timeout_s):
                await self._register(data)
        except TimeoutError:
            raise AdvertiserError(
                AdvertiserErrorReason.TIMEOUT,
                f"cannot advertise on {self._adapter}: BlueZ did not answer"
                f" within {self.call_timeout_s:g} s",
            ) from None
        self._active = True

    async def stop(self) -> None:
        """Unregister and close the connection; failures are logged (BlueZ drops the
        advertisement with the connection anyway)."""
        bus, self._bus = self._bus, None
        self._active = False
        if bus is None:
            return
        try:
            if self._maybe_registered and bus.connected:
                async with asyncio.timeout(self.call_timeout_s):
                    await self._unregister(bus)
        except (AdvertiserError, TimeoutError) as exc:
            _log.warning("unregistering the beacon on %s failed: %s", self._adapter, exc)
        finally:
            self._maybe_registered = False
            bus.unexport(ADVERTISEMENT_PATH)
            bus.disconnect()

    async def _register(self, data: bytes) -> None:
        bus, advertisement = await self._connect()
        if self._maybe_registered:
            await self._unregister(bus)
        advertisement.ibeacon = data
        self._maybe_registered = True
        reply = await self._call(bus, "RegisterAdvertisement", "oa{sv}", [ADVERTISEMENT_PATH, {}])
        if reply.error_name is not None:
            self._maybe_registered = False
            raise self._error("RegisterAdvertisement", reply)

    async def _unregister(self, bus: MessageBus) -> None:
        reply = await self._call(bus, "UnregisterAdvertisement", "o", [ADVERTISEMENT_PATH])
        if reply.error_name not in (None, _DOES_NOT_EXIST):
            raise self._error("UnregisterAdvertisement", reply)
        self._maybe_registered = False

    async def _connect(self) -> tuple[MessageBus, LEAdvertisement]:
        """The connection with the advertisement exported, (re)opened if needed."""
        if self._bus is not None and self._advertisement is not None and self._bus.connected:
            return self._bus, self._advertisement
        # Imported here so other platforms, and the simulator, never need dbus-fast.
        from dbus_fast import AuthError, BusType
        from dbus_fast.aio import MessageBus

        from onboard.bluez_advertisement import LEAdvertisement

        try:
            bus = await MessageBus(bus_address=self._bus_address, bus_type=BusType.SYSTEM).connect()
        except (OSError, ValueError, AuthError) as exc:
            raise AdvertiserError(
                AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE,
                f"cannot advertise on {self._adapter}: no system D-Bus: {exc}",
            ) from exc
        advertisement = LEAdvertisement(self._released)
        bus.export(ADVERTISEMENT_PATH, advertisement)
        # BlueZ dropped whatever an earlier connection registered when it closed.
        self._bus, self._advertisement, self._maybe_registered = bus, advertisement, False
        return bus, advertisement

    async def _call(self, bus: MessageBus, member: str, signature: str, body: list[Any]) -> Message:
        from dbus_fast import Message

        try:
            return await bus.call(
                Message(
                    destination=BLUEZ,
                    path=self._adapter_path,
                    interface=MANAGER_INTERFACE,
                    member=member,
                    signature=signature,
                    body=body,
                )
            )
        except (OSError, EOFError) as exc:
            raise AdvertiserError(
                AdvertiserErrorReason.BLUETOOTH_UNAVAILABLE,
                f"cannot advertise on {self._adapter}: D-Bus connection lost: {exc}",
            ) from exc

    def _error(self, member: str, reply: Message) -> AdvertiserError:
        name = reply.error_name or "no error name"
        detail = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        return AdvertiserError(
            classify_dbus_error(name),
            f"{member} on {self._adapter} failed: {name}" + (f": {detail}" if detail else ""),
        )

    def _released(self) -> None:
        """BlueZ called ``Release``: it no longer advertises our beacon."""
        self._active = False
        self._maybe_registered = False
        _log.warning("BlueZ released the beacon on %s", self._adapter)


class FakeAdvertiser:
    """A ``BeaconAdvertiser`` that records what it advertised, and when, and fails on request.

    ``clock`` gives the time (UTC epoch ms) recorded with each beacon in ``advertised``.
    ``fail`` makes every ``start`` raise until ``recover``; ``release`` imitates BlueZ
    dropping the advertisement on its own.
    """

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self.advertised: list[tuple[int, wire.IBeacon]] = []
        self.current: wire.IBeacon | None = None
        self.failing: AdvertiserErrorReason | None = None
        self.attempts = 0
        self.stops = 0

    @property
    def active(self) -> bool:
        """Whether a beacon is advertised now."""
        return self.current is not None

    async def start(self, beacon: wire.IBeacon) -> None:
        """Advertise ``beacon`` (recorded with the clock's time), or fail as told."""
        self.attempts += 1
        self.current = None
        if self.failing is not None:
            raise AdvertiserError(self.failing, f"fake advertiser: {self.failing.value}")
        self.current = beacon
        self.advertised.append((self._clock(), beacon))

    async def stop(self) -> None:
        """Stop advertising."""
        self.stops += 1
        self.current = None

    def fail(self, reason: AdvertiserErrorReason) -> None:
        """From now on every ``start`` raises ``AdvertiserError(reason)``."""
        self.failing = reason

    def recover(self) -> None:
        """``start`` succeeds again."""
        self.failing = None

    def release(self) -> None:
        """Drop the advertisement, as BlueZ does when it calls ``Release``."""
        self.current = None

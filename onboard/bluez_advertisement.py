"""The ``org.bluez.LEAdvertisement1`` object bibo exports on D-Bus for BlueZ to read.

Part of the advertiser seam (``onboard/advertiser.py``), in a module of its own because the
D-Bus signatures are class annotations that need dbus-fast at import time: only
``BlueZAdvertiser`` imports this, when it starts, so other platforms never need dbus-fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final

from dbus_fast import PropertyAccess, Variant
from dbus_fast.annotations import DBusSignature, DBusStr
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from onboard import wire

INTERFACE: Final = "org.bluez.LEAdvertisement1"

ADVERTISEMENT_TYPE: Final = "broadcast"
"""Non-connectable and not scannable, as iBeacons are: the unit offers phones nothing to
connect to, and BlueZ then adds no flags or names of its own."""

ManufacturerDataType = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
"""BlueZ's ``ManufacturerData``: company id (uint16) to a variant holding the bytes (``ay``)."""

NoResult = Annotated[None, DBusSignature("")]
"""A method returning nothing (dbus-fast reads a plain ``None`` annotation as no signature)."""


class LEAdvertisement(ServiceInterface):
    """One advertisement: ``Type`` and the iBeacon as ``ManufacturerData``.

    BlueZ reads the properties once, when ``RegisterAdvertisement`` is called, so new data
    takes effect by registering again (``BlueZAdvertiser.start``). BlueZ calls ``Release``
    when it drops the advertisement on its own (adapter removed, bluetoothd stopping);
    ``on_release`` hears of it.
    """

    def __init__(self, on_release: Callable[[], None]) -> None:
        super().__init__(INTERFACE)
        self._on_release = on_release
        self.ibeacon = b""
        """The iBeacon manufacturer data (``wire.encode_ibeacon``) to advertise."""

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> DBusStr:  # noqa: N802 - BlueZ's property name
        return ADVERTISEMENT_TYPE

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> ManufacturerDataType:  # noqa: N802 - BlueZ's property name
        return {wire.APPLE_COMPANY_ID: Variant("ay", self.ibeacon)}

    @dbus_method()
    def Release(self) -> NoResult:  # noqa: N802 - BlueZ's method name
        self._on_release()

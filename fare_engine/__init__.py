"""bibo's fare engine: tariffs as data, single-journey quotes and the exact best price.

Pure: no I/O except reading the tariff files shipped in `fare_engine/tariffs/`.
Money is integer cents; times are UTC epoch milliseconds.

- `best_price(trips, tariff)`: the cheapest products of one tariff.
- `best_price_multi(trips, tariffs)`: the cheapest mix over several tariffs
  (default: Ruhr-Lippe 2026 with the Deutschlandticket, and eezy Westfalen 2026).
- `PricingAccount`: the running best price of one passenger as trips arrive.
- `longest_validity_ms(tariffs)`: no product pays for two trips boarding further apart.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fare_engine.bill import Bill, BilledTrip, BillProduct
    from fare_engine.errors import FareInputError, FareInputReason, TariffError
    from fare_engine.horizon import longest_validity_ms
    from fare_engine.incremental import PricingAccount
    from fare_engine.pricing import best_price, best_price_multi, default_tariffs
    from fare_engine.quote import Quote, quote
    from fare_engine.solve import SolverError
    from fare_engine.tariff import Stop, Tariff, load_tariff, load_tariff_file
    from fare_engine.trips import Trip

_HOMES = {
    "Bill": "fare_engine.bill",
    "BillProduct": "fare_engine.bill",
    "BilledTrip": "fare_engine.bill",
    "FareInputError": "fare_engine.errors",
    "FareInputReason": "fare_engine.errors",
    "PricingAccount": "fare_engine.incremental",
    "Quote": "fare_engine.quote",
    "SolverError": "fare_engine.solve",
    "Stop": "fare_engine.tariff",
    "Tariff": "fare_engine.tariff",
    "TariffError": "fare_engine.errors",
    "Trip": "fare_engine.trips",
    "best_price": "fare_engine.pricing",
    "best_price_multi": "fare_engine.pricing",
    "default_tariffs": "fare_engine.pricing",
    "load_tariff": "fare_engine.tariff",
    "longest_validity_ms": "fare_engine.horizon",
    "load_tariff_file": "fare_engine.tariff",
    "quote": "fare_engine.quote",
}
"""Where each public name lives. The package imports it on first use (PEP 562), so a module
that needs only ``fare_engine.geo`` (the backend's reconciliation, the simulator's network)
does not load the solver and SciPy with it."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fare_engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "Bill",
    "BillProduct",
    "BilledTrip",
    "FareInputError",
    "FareInputReason",
    "PricingAccount",
    "Quote",
    "SolverError",
    "Stop",
    "Tariff",
    "TariffError",
    "Trip",
    "best_price",
    "best_price_multi",
    "default_tariffs",
    "load_tariff",
    "load_tariff_file",
    "longest_validity_ms",
    "quote",
]

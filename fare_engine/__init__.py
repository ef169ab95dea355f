"""bibo's fare engine: tariffs as data, single-journey quotes and the exact best price.

Pure: no I/O except reading the tariff files shipped in `fare_engine/tariffs/`.
Money is integer cents; times are UTC epoch milliseconds.

- `best_price(trips, tariff)`: the cheapest products of one tariff.
- `best_price_multi(trips, tariffs)`: the cheapest mix over several tariffs
  (default: Ruhr-Lippe 2026 with the Deutschlandticket, and eezy Westfalen 2026).
- `PricingAccount`: the running best price of one passenger as trips arrive.
"""

from fare_engine.bill import Bill, BilledTrip, BillProduct
from fare_engine.errors import FareInputError, FareInputReason, TariffError
from fare_engine.incremental import PricingAccount
from fare_engine.pricing import best_price, best_price_multi, default_tariffs
from fare_engine.quote import Quote, quote
from fare_engine.solve import SolverError
from fare_engine.tariff import Stop, Tariff, load_tariff, load_tariff_file
from fare_engine.trips import Trip

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
    "quote",
]

"""bibo's fare engine: tariffs as data, single-ticket quotes and the exact best price.

Pure: no I/O except reading the tariff files shipped in `fare_engine/tariffs/`.
Money is integer euro cents; times are UTC epoch milliseconds.
"""

from fare_engine.best_price import best_price
from fare_engine.bill import Bill, BilledTrip, BillProduct
from fare_engine.errors import FareInputError, FareInputReason, TariffError
from fare_engine.quote import Quote, quote
from fare_engine.tariff import Stop, Tariff, load_tariff, load_tariff_file
from fare_engine.trips import Trip

__all__ = [
    "Bill",
    "BillProduct",
    "BilledTrip",
    "FareInputError",
    "FareInputReason",
    "Quote",
    "Stop",
    "Tariff",
    "TariffError",
    "Trip",
    "best_price",
    "load_tariff",
    "load_tariff_file",
    "quote",
]

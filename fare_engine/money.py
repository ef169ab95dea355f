"""Money as integer cents, shown the way a passenger reads it."""

from __future__ import annotations

_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}


def format_cents(cents: int, currency: str = "EUR") -> str:
    """Cents as a readable amount: 310 -> '3,10 €' (EUR), '£3.10' (GBP), '$3.10' (USD)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    if currency == "EUR":
        return f"{sign}{whole},{part:02d} €"
    return f"{sign}{_SYMBOLS.get(currency, currency + ' ')}{whole}.{part:02d}"

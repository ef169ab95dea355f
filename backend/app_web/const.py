"""Tuning constants of the passenger web app."""

from __future__ import annotations

from typing import Final

INVOICE_LINK_TTL_S: Final = 300
"""How long a signed invoice link opens the invoice (s): long enough to open and print it,
short enough that a link in a browser history or a forwarded message soon stops working."""

TICKET_REFRESH_S: Final = 30
"""How often the status page fetches the ticket's QR again: its time code changes every 30 s
(issue 16, the inspection ticket)."""

STATUS_REFRESH_S: Final = 60
"""How often the status page asks for the live status without a notification (s)."""

"""The inspection ticket: a signed, time-coded QR ticket for riders on board, verified offline
by inspectors (docs/inspection-ticket.md)."""

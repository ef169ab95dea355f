"""Billing: the best price per passenger and month on the append-only ledger, invoices,
their rendering, and the operators' charges and month close.
"""

"""Passengers: registration and devices, the passenger API (own trips, status, balance,
invoices, disputes, export, erasure) and the dispute and correction rules.
"""

"""Operators: their API (trip review and trace, disputes, corrections, CSV, operations),
registration, and the server-rendered operator pages (``web``).
"""

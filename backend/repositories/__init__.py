"""Repository modules by domain: every SQL query outside ``backend.repository`` (ingest,
trips, billing) lives here. Functions take a session, never commit, and return ORM rows,
dataclasses or plain values. ``tests/backend/test_sql_placement.py`` keeps SQL here.
"""

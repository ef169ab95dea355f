"""Trips: token resolution, the reconciliation model, the work queue and its workers, and
the trips they produce (``GET /v1/trips``, ``POST /v1/reconcile``, ``GET /v1/stops``).

``reconciliation``, ``resolution`` and ``stops`` are pure (no database): the simulator and
the benchmarks import them.
"""

"""Ingest: vehicles, their signed uploads (``POST /v1/vehicles/{id}/batches``) and the
sightings and events stored from them.
"""

"""Maintenance: raw-sighting retention, purge marks, and PostgreSQL's service-day
partitions.
"""

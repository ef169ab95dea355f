"""Phones: the signed upload of the bus beacons a phone heard (``POST
/v1/devices/{id}/sightings``), each beacon resolved to its vehicle, and the phone's region
and activity events stored with them.
"""

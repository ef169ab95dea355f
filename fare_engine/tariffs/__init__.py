"""Tariff data files of the fare engine (TOML), read via importlib.resources."""

"""Simulated devices: a neurophox-backed MZI mesh chip."""

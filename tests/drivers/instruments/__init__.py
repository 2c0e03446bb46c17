"""Instrument drivers, instruments.yaml and `ffzero-lab instruments`: transcripts against pyvisa-sim."""

"""The run store (SQLite: runs, steps, epochs, measurements, arrays; bit-exact resume), exports,
replaying a recorded step and plotting a run. Imports ``ffzero``, ``data``, ``config`` and
``core``.
"""

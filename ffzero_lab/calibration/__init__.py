"""Calibrating a rig's heaters: sweeps in V^2 on the instruments, fitting ``phi = phi0 + k V^2``
per channel and the mesh offsets through the design, the calibration file, plots. Imports
``rig`` and the rooms below.
"""

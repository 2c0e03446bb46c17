"""Training on the rig: each mesh of ``instruments.yaml`` as a
:class:`~ffzero_lab.contract.PhysicalLayer` driven through the instrument drivers.

Drivers are reached only through the instrument protocols and the ``module:Class`` names of
``instruments.yaml``; this package never imports a driver.

| module | job |
| --- | --- |
| :mod:`.optics` | the chip's nominal design: what a phase name means, the modulator's field |
| :mod:`.calibration` | the calibration file; phase <-> voltage through ``phi = phi0 + k V^2`` |
| :mod:`.spec` | a mesh's channels, laws and ports from the two files (no I/O) |
| :mod:`.rig` | the open instruments: checked writes, readings, retries, the safe state |
| :mod:`.plan` | the order of a call's S x B evaluations (one heater settle per setting) |
| :mod:`.layer` | :class:`HardwareMesh`, the PhysicalLayer |
| :mod:`.build` | instruments file -> :class:`HardwareNetwork` |
| :mod:`.preflight` | every reachable set-point against the limits and the power budget |
| :mod:`.fit` | fitting phase laws to sweeps (sinusoids in V^2, the mesh design) |
| :mod:`.calibrate` | the calibration sweeps on the rig |
| :mod:`.plots` | one PNG per calibrated channel |
"""

from .build import HardwareNetwork, load_specs, open_network
from .calibration import CalibrationFile, ChannelLaw, PhaseLaws, load_calibration, save_calibration
from .layer import HardwareMesh, InputRangeError
from .preflight import Setpoints, check_setpoints
from .rig import RigCounters, RigIO

__all__ = [
    "CalibrationFile",
    "ChannelLaw",
    "HardwareMesh",
    "HardwareNetwork",
    "InputRangeError",
    "PhaseLaws",
    "RigCounters",
    "RigIO",
    "Setpoints",
    "check_setpoints",
    "load_calibration",
    "load_specs",
    "open_network",
    "save_calibration",
]

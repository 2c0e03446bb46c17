"""The physics of the chip, one implementation of each piece, pure numpy.

:mod:`.clements` (the rectangular MZI mesh's transfer for batches of settings, one convention:
``outputs = inputs @ U``), :mod:`.design` (what a rig's phase names mean, the input modulator),
:mod:`.decomposition` (Clements decomposition into the design's phases), :mod:`.heaters` (the
thermo-optic law ``phi = phi0 + k V^2``), :mod:`.activation` (the electro-optic activation) and
:mod:`.differentiable` (their TensorFlow twins for the autodiff reference methods, imported
lazily). The simulated chip, the emulated rig, the rig and its calibration all use these.
Imports only :mod:`ffzero_lab.core`; drivers import it.
"""

"""Device and instrument drivers for ffzero-lab.

Each driver meets :class:`ffzero_lab.core.contract.PhysicalLayer`. Protocols and
``instruments.yaml`` name a driver by entry point (group ``ffzero_lab.devices``) or by a
dotted path ``module:attribute``; the ``ffzero_lab`` package never imports this folder by name.
"""

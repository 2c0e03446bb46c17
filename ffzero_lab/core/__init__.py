"""The contract and the things every room stands on.

Holds the :class:`~ffzero_lab.core.contract.PhysicalLayer` contract every device implements,
the :class:`~ffzero_lab.core.network.Network` of layers and stages (with its safe state and
close), the user-facing errors (one line, exit code 2) and precise waits. Imports nothing else
of ffzero_lab; drivers import it.
"""

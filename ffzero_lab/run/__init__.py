"""A run: preparing a protocol (data, seeds, the device's network), the orchestrator that trains
layer by layer and emits documents, and :func:`~ffzero_lab.run.session.open_network`, the one
place that opens a lab network and leaves it safe and closed on every exit. Imports ``live``,
``store``, ``rig`` and the rooms below.
"""

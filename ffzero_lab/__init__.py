"""ffzero-lab: hardware-in-the-loop FFzero training of physical neural networks.

The package holds the contract (:mod:`ffzero_lab.core.contract`), the FFzero math as pure
functions, the orchestrator, the run store and the CLI. Devices live in ``drivers/`` and are
found by name (entry point or dotted path), never imported here.
"""

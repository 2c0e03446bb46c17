"""The protocol file (pydantic models validated once at the edge, ``--set`` overrides) and the
registry that finds a device driver by entry point or ``module:attribute``. Imports only
:mod:`ffzero_lab.core`.
"""

"""Sweeps: a grid over protocol fields, every cell validated up front, cells run on Dask
(loopback LocalCluster or a scheduler), results stored per cell (resume), tables and figures.
Imports ``run`` and the rooms below.
"""

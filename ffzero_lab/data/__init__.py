"""Data sets: the bundled digits, MNIST-format IDX files from the data directory
(``$FFZERO_DATA_DIR``), synthetic regression functions; every loader returns a
:class:`~ffzero_lab.data.dataset.Dataset`. Imports only :mod:`ffzero_lab.core`.
"""

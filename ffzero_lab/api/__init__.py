"""The Python API (docs/python-api.md): what a notebook or a script needs, in one place.

>>> import ffzero_lab as fz
>>> protocol = fz.load_protocol("protocols/quickstart.yaml", overrides={"train.epochs": 2})
>>> result = fz.train(protocol)                   # a dry run on the simulated chip
>>> with fz.open_runs() as runs:
...     ds = runs.dataset(result)                 # the run as an xarray.Dataset

The room sits beside ``cli`` at the top of the package (neither imports the other) and uses
the rooms below: ``run`` (prepare, orchestrator, open_network), ``live``, ``store``, ``config``.
``import ffzero_lab`` stays fast: the names below are loaded on first use.
"""

from __future__ import annotations

from pathlib import Path

from ffzero_lab.api.runs import Runs, open_runs
from ffzero_lab.api.training import TrainResult, train
from ffzero_lab.config.protocol import Overrides, Protocol
from ffzero_lab.core.errors import ConfigError, DataError, UserError
from ffzero_lab.rig.errors import InstrumentError
from ffzero_lab.store.runstore import StoreError

__all__ = [
    "ConfigError",
    "DataError",
    "InstrumentError",
    "Protocol",
    "Runs",
    "StoreError",
    "TrainResult",
    "UserError",
    "load_protocol",
    "open_runs",
    "train",
]


def load_protocol(path: str | Path, overrides: Overrides | None = None) -> Protocol:
    """Read and validate a protocol file, with ``overrides`` applied before validation.

    Args:
        path: the protocol's YAML file.
        overrides: ``{"train.epochs": 3, "method": "bp-dd"}`` (dotted field -> value) or
            ``["train.epochs=3"]`` (as ``--set`` takes them, values read as YAML).

    Returns:
        The :class:`~ffzero_lab.config.protocol.Protocol`; ``protocol.with_overrides({...})``
        gives a changed copy, validated again.

    Raises:
        ConfigError: the file or a field is wrong (the message names the file and the field).
    """
    return Protocol.load(path, overrides)

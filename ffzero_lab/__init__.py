"""ffzero-lab: hardware-in-the-loop FFzero training of physical neural networks.

The package is laid out in rooms, each importing only the rooms below it (``lint-imports``
checks this): ``cli`` | ``api`` > ``sweep`` > ``run`` | ``calibration`` > ``live`` > ``store`` >
``rig`` > ``ffzero`` | ``data`` | ``config`` > ``photonics`` > ``core``. Devices and instruments
live in ``drivers/`` and are found by name (entry point or ``module:attribute``), never imported
here.

The Python API (docs/python-api.md) is available from here, loaded on first use so that
``import ffzero_lab`` stays fast: ``load_protocol``, ``train``, ``open_runs``, ``Protocol``,
``TrainResult``, ``Runs`` and the errors they raise.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("ffzero-lab")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

#: The names of :mod:`ffzero_lab.api` that ``ffzero_lab`` gives, loaded on first use.
API = ("ConfigError", "DataError", "InstrumentError", "Protocol", "Runs", "StoreError", "TrainResult",
       "UserError", "load_protocol", "open_runs", "train")

__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        value = getattr(import_module("ffzero_lab.api"), name)
        globals()[name] = value  # the next look-up is a plain attribute
        return value
    raise AttributeError(f"module 'ffzero_lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))

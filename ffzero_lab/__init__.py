"""ffzero-lab: hardware-in-the-loop FFzero training of physical neural networks.

The package is laid out in rooms, each importing only the rooms below it (``lint-imports``
checks this): ``cli`` > ``sweep`` > ``run`` | ``calibration`` > ``live`` > ``store`` > ``rig`` >
``ffzero`` | ``data`` | ``config`` > ``photonics`` > ``core``. Devices and instruments live in
``drivers/`` and are found by name (entry point or ``module:attribute``), never imported here.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ffzero-lab")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

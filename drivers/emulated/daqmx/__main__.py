"""``python -m drivers.emulated.daqmx --port 0``: the emulated NI-DAQmx device server on 127.0.0.1.

Prints the port on stdout, serves until SIGTERM or SIGINT, exits 0 (see :func:`.server.main`).
"""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())

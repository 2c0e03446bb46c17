"""The Keysight N7744A / N7745A command set (the subset :mod:`drivers.instruments.keysight_n774x`
uses), served by an emulated instrument whose readings come from a callback.

Settings are accepted and kept; ``:FETC:POW:ALL?`` and ``:SENS<p>:FUNC:RES?`` answer IEEE-488.2
blocks of little-endian float32; a logging run completes after ``points * averaging time`` of
wall-clock time. An unknown command is queued as ``-113,"Undefined header"`` for ``:SYST:ERR?``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

#: Ports by model.
PORTS = {"N7744A": 4, "N7745A": 8}
_SENSE = re.compile(r"^:SENS(\d+):POW:(UNIT|WAV|RANG|RANG:AUTO|ATIM) (.+)$")

#: ``read(samples)`` -> ``(ports, samples)`` optical powers, W.
Reader = Callable[[int], NDArray[np.float64]]


def float32_block(values: NDArray[np.float64]) -> bytes:
    """An IEEE-488.2 definite-length block of little-endian float32, newline-terminated."""
    data = np.asarray(values, dtype="<f4").tobytes()
    length = str(len(data))
    return f"#{len(length)}{length}".encode("ascii") + data + b"\n"


class N774xEmulator:
    """An emulated N774x multiport power meter.

    Args:
        read: the optical powers at the ports, ``(ports, samples)`` W.
        model: ``N7744A`` or ``N7745A``.
        serial: the serial number in the ``*IDN?`` reply.
        clock: seconds, for logging runs.
    """

    def __init__(self, read: Reader, model: str = "N7744A", serial: str = "MY00000001",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read, self.model, self.serial, self.clock = read, model, serial, clock
        self.ports = PORTS[model]
        self.sense: dict[tuple[int, str], str] = {}
        self.errors: list[str] = []
        self.logging: tuple[int, float] = (1, 1e-3)
        self.log_started: float | None = None
        self.log_result: NDArray[np.float64] | None = None

    def handle(self, line: str) -> list[bytes]:
        """One command line -> its replies (none for a setting)."""
        if line == "*IDN?":
            return [f"Keysight Technologies,{self.model},{self.serial},1.0.0\n".encode("ascii")]
        if line == ":SYST:ERR?":
            return [(self.errors.pop(0) if self.errors else '+0,"No error"').encode("ascii") + b"\n"]
        if line == ":FETC:POW:ALL?":
            return [float32_block(self.read(1)[:, 0])]
        if (match := re.match(r"^:READ(\d+):POW\?$", line)) and 1 <= int(match.group(1)) <= self.ports:
            return [f"{self.read(1)[int(match.group(1)) - 1, 0]:+.8E}\n".encode("ascii")]
        if (match := _SENSE.match(line)) and 1 <= int(match.group(1)) <= self.ports:
            self.sense[(int(match.group(1)), match.group(2))] = match.group(3)
            return []
        if line in (":INIT1:CONT ON", ":INIT1:CONT OFF", ":TRIG1:INP IGN"):
            return []
        return self._logging(line)

    def _logging(self, line: str) -> list[bytes]:
        if (match := re.match(r"^:SENS1:FUNC:PAR:LOGG (\d+),([0-9.eE+-]+)$", line)) is not None:
            self.logging = (int(match.group(1)), float(match.group(2)))
            return []
        if line == ":SENS1:FUNC:STAT LOGG,STAR":
            self.log_started, self.log_result = self.clock(), None
            return []
        if line == ":SENS1:FUNC:STAT LOGG,STOP":
            self.log_started = None
            return []
        if line == ":SENS1:FUNC:STAT?":
            points, atime = self.logging
            if self.log_started is None and self.log_result is None:
                return [b"NONE,COMPLETE\n"]
            if self.log_result is None and self.clock() - self.log_started < points * atime:  # type: ignore[operator]
                return [b"LOGGING_STABILITY,PROGRESS\n"]
            if self.log_result is None:
                self.log_result = self.read(points)
            return [b"LOGGING_STABILITY,COMPLETE\n"]
        if (match := re.match(r"^:SENS(\d+):FUNC:RES\?$", line)) and self.log_result is not None \
                and 1 <= int(match.group(1)) <= self.ports:
            return [float32_block(self.log_result[int(match.group(1)) - 1])]
        self.errors.append('-113,"Undefined header"')
        return []

"""The Keysight N7744A / N7745A command set (the subset :mod:`drivers.instruments.keysight_n774x`
uses), served by an emulated instrument whose readings come from a callback.

Settings are accepted and kept; ``:FETC:POW:ALL?`` and ``:SENS<p>:FUNC:RES?`` answer IEEE-488.2
blocks of little-endian float32. Errors go to the queue ``:SYST:ERR?`` reads, as on the
instrument: an unknown command ``-113,"Undefined header"``, a value out of range ``-222``, a
setting while logging ``-221`` (the range, averaging time, trigger input and logging parameters
are fixed while a run is armed), a query that cannot be answered (``:SENS<p>:FUNC:RES?`` before
the run completes) ``-200`` and no reply at all.

Logging is a state machine:

| state | on | goes to |
| --- | --- | --- |
| ``IDLE`` | ``:SENS1:FUNC:STAT LOGG,STAR`` | ``ARMED`` (``SME``, ``CME``) or ``RUNNING`` (``IGN``) |
| ``ARMED`` | a trigger edge (``SME``) | ``ARMED`` with one more sample; ``COMPLETE`` at ``points`` |
| ``ARMED`` | the first trigger edge (``CME``) | ``RUNNING`` |
| ``RUNNING`` | ``points * averaging time`` on the meter's clock | ``COMPLETE`` |
| any | ``:SENS1:FUNC:STAT LOGG,STOP`` | ``IDLE`` (a complete run's samples stay readable) |

A trigger is an edge on the trigger input, fed by :meth:`N774xEmulator.trigger_samples` (the
sweep's sample clock, with the port powers at each edge) or ``:TRIG NODEA`` (one edge, the powers
``read`` gives now). With ``:TRIG1:INP SME`` each trigger logs one sample on every port; with
``CME`` the first starts the whole run on the meter's clock; with ``IGN`` a run starts at once.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from .instrument import EmulationContext

#: Ports by model.
PORTS = {"N7744A": 4, "N7745A": 8}
#: Samples per port one logging run buffers.
LOG_POINTS_MAX = 1_000_000
#: Averaging time of one sample, ``(shortest, longest)``, s.
AVERAGING_RANGE_S = (1e-6, 10.0)
_SENSE = re.compile(r"^:SENS(\d+):POW:(UNIT|WAV|RANG|RANG:AUTO|ATIM) (.+)$")
_TRIGGER_MODES = {"IGN": "IGN", "IGNORE": "IGN", "SME": "SME", "SMEASURE": "SME", "CME": "CME", "CMEASURE": "CME"}

#: ``read(samples)`` -> ``(ports, samples)`` optical powers, W.
Reader = Callable[[int], NDArray[np.float64]]

UNDEFINED = '-113,"Undefined header"'
OUT_OF_RANGE = '-222,"Data out of range"'
WHILE_LOGGING = '-221,"Settings conflict;logging in progress"'
NOT_COMPLETE = '-200,"Execution error;logging not complete"'


def float32_block(values: NDArray[np.float64]) -> bytes:
    """An IEEE-488.2 definite-length block of little-endian float32, newline-terminated."""
    data = np.asarray(values, dtype="<f4").tobytes()
    length = str(len(data))
    return f"#{len(length)}{length}".encode("ascii") + data + b"\n"


def emulate(context: EmulationContext) -> "N774xEmulator":
    """The emulator of a Keysight N774x power meter of an emulated rig (entry point
    ``keysight-n774x`` of ``ffzero_lab.emulated_instruments``), reading the chip's powers."""
    model = context.model or "N7744A"
    ports = PORTS[model]
    return N774xEmulator(lambda samples: context.read_power_W(ports, samples), model)


class N774xEmulator:
    """An emulated N774x multiport power meter.

    Args:
        read: the optical powers at the ports, ``(ports, samples)`` W.
        model: ``N7744A`` or ``N7745A``.
        serial: the serial number in the ``*IDN?`` reply.
        clock: seconds, for runs on the meter's own clock (``IGN``, ``CME``).

    Attributes:
        state: ``IDLE``, ``ARMED``, ``RUNNING`` or ``COMPLETE``.
        trigger_input: ``IGN``, ``SME`` or ``CME``.
        logging: ``(points, averaging time s)`` of the next run.
        logged: samples logged by the current run.
        triggers: trigger edges received in all (logged or not).
    """

    def __init__(self, read: Reader, model: str = "N7744A", serial: str = "MY00000001",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read, self.model, self.serial, self.clock = read, model, serial, clock
        self.ports = PORTS[model]
        self.sense: dict[tuple[int, str], str] = {}
        self.errors: list[str] = []
        self.trigger_input = "IGN"
        self.logging: tuple[int, float] = (1, 1e-3)
        self.state = "IDLE"
        self.logged = 0
        self.triggers = 0
        self._buffer: NDArray[np.float32] | None = None  # (points, ports) of the current run
        self._run: tuple[int, float] = self.logging  # the current run's (points, averaging time)
        self._started = 0.0  # clock when a RUNNING run started, s
        self._result: NDArray[np.float32] | None = None  # (points, ports) of the last complete run
        self._lock = threading.Lock()  # commands and triggers come from different threads

    # -- the command set ----------------------------------------------------------------------
    def handle(self, line: str) -> list[bytes]:
        """One command line -> its replies (none for a setting or a refused query)."""
        with self._lock:
            return self._handle(line)

    def _handle(self, line: str) -> list[bytes]:
        if line == "*IDN?":
            return [f"Keysight Technologies,{self.model},{self.serial},1.0.0\n".encode("ascii")]
        if line == ":SYST:ERR?":
            return [(self.errors.pop(0) if self.errors else '+0,"No error"').encode("ascii") + b"\n"]
        if line == "*CLS":
            self.errors.clear()
            return []
        if line == ":FETC:POW:ALL?":
            return [float32_block(self.read(1)[:, 0])]
        if (match := re.match(r"^:READ(\d+):POW\?$", line)) and 1 <= int(match.group(1)) <= self.ports:
            return [f"{self.read(1)[int(match.group(1)) - 1, 0]:+.8E}\n".encode("ascii")]
        if (match := _SENSE.match(line)) and 1 <= int(match.group(1)) <= self.ports:
            if match.group(2) in ("RANG", "RANG:AUTO", "ATIM") and self._logging_now():
                return self._refuse(WHILE_LOGGING)
            self.sense[(int(match.group(1)), match.group(2))] = match.group(3)
            return []
        if line in (":INIT1:CONT ON", ":INIT1:CONT OFF"):
            return []
        if (match := re.match(r"^:TRIG(?:1)?:INP(?:UT)? (\w+)$", line, re.IGNORECASE)) is not None:
            mode = _TRIGGER_MODES.get(match.group(1).upper())
            if mode is None:
                return self._refuse('-224,"Illegal parameter value"')
            if self._logging_now():
                return self._refuse(WHILE_LOGGING)
            self.trigger_input = mode
            return []
        if re.match(r"^:TRIG(?:1)?:INP(?:UT)?\?$", line, re.IGNORECASE):
            return [f"{self.trigger_input}\n".encode("ascii")]
        if line.upper() in (":TRIG NODEA", ":TRIG NODEB"):
            self._edges(1, lambda rows: self.read(rows).T)
            return []
        return self._logging_command(line)

    def _logging_command(self, line: str) -> list[bytes]:
        if (match := re.match(r"^:SENS(\d+):FUNC:PAR:LOGG (\d+),([0-9.eE+-]+)(S|MS|US)?$", line)) is not None:
            if self._logging_now():
                return self._refuse(WHILE_LOGGING)
            points = int(match.group(2))
            atime = float(match.group(3)) * {"S": 1.0, "MS": 1e-3, "US": 1e-6, None: 1.0}[match.group(4)]
            low, high = AVERAGING_RANGE_S
            if not (1 <= points <= LOG_POINTS_MAX and math.isfinite(atime) and low <= atime <= high):
                return self._refuse(OUT_OF_RANGE)
            self.logging = (points, atime)
            return []
        if re.match(r"^:SENS(\d+):FUNC:STAT LOGG,STAR$", line):
            self._start()
            return []
        if re.match(r"^:SENS(\d+):FUNC:STAT LOGG,STOP$", line):
            self.state, self._buffer = "IDLE", None
            return []
        if re.match(r"^:SENS(\d+):FUNC:STAT\?$", line):
            self._advance()
            reply = {"IDLE": "NONE,COMPLETE", "COMPLETE": "LOGGING_STABILITY,COMPLETE"}.get(
                self.state, "LOGGING_STABILITY,PROGRESS")
            return [reply.encode("ascii") + b"\n"]
        if re.match(r"^:SENS(\d+):FUNC:RES:IND\?$", line):
            self._advance()
            return [f"+{self.logged}\n".encode("ascii")]
        if (match := re.match(r"^:SENS(\d+):FUNC:RES\?$", line)) and 1 <= int(match.group(1)) <= self.ports:
            self._advance()
            if self._result is None or self._logging_now():
                return self._refuse(NOT_COMPLETE)
            return [float32_block(self._result[:, int(match.group(1)) - 1])]
        return self._refuse(UNDEFINED)

    def _refuse(self, error: str) -> list[bytes]:
        """Queue ``error`` for ``:SYST:ERR?``; nothing is executed and nothing replied."""
        self.errors.append(error)
        return []

    # -- logging ------------------------------------------------------------------------------
    def _logging_now(self) -> bool:
        """A run is armed or running (settings are fixed)."""
        self._advance()
        return self.state in ("ARMED", "RUNNING")

    def _start(self) -> None:
        """``LOGG,STAR``: a new run of ``logging`` (the previous run's samples are dropped)."""
        points, _ = self._run = self.logging
        self._result, self.logged = None, 0
        if self.trigger_input == "SME":
            self.state, self._buffer = "ARMED", np.zeros((points, self.ports), dtype=np.float32)
        elif self.trigger_input == "CME":
            self.state, self._buffer = "ARMED", None
        else:
            self.state, self._started, self._buffer = "RUNNING", self.clock(), None

    def _advance(self) -> None:
        """A run on the meter's clock: the samples it has taken by now."""
        if self.state != "RUNNING":
            return
        points, atime = self._run
        self.logged = min(points, int((self.clock() - self._started) / atime))
        if self.logged >= points:
            self._result = np.asarray(self.read(points), dtype=np.float32).T.copy()
            self.state = "COMPLETE"

    def _edges(self, n: int, powers: Callable[[int], NDArray[np.float64]], period_s: float | None = None) -> int:
        """``n`` trigger edges, ``period_s`` apart; ``powers(rows)`` the port powers at the edges
        that log a sample, ``(rows, ports)`` W. Returns the samples logged."""
        self.triggers += n
        self._advance()
        if self.state != "ARMED" or n == 0:
            return 0
        points, atime = self._run
        if self.trigger_input == "CME":
            self.state, self._started = "RUNNING", self.clock()
            return 0
        # an edge while the previous sample is still averaging is lost
        step = 1 if period_s is None or period_s >= atime else math.ceil(atime / period_s - 1e-9)
        take = min(-(-n // step), points - self.logged)
        rows = np.asarray(powers(n), dtype=np.float64)[::step][:take]
        assert self._buffer is not None
        self._buffer[self.logged:self.logged + take] = rows
        self.logged += take
        if self.logged == points:
            self._result, self._buffer, self.state = self._buffer, None, "COMPLETE"
        return take

    def trigger_samples(self, powers_W: NDArray[np.float64], period_s: float | None = None) -> int:
        """``n`` external trigger edges at the trigger input (e.g. a sweep's sample clock).

        With ``:TRIG1:INP SME`` and a run armed, edge k logs row k of ``powers_W`` on every port,
        until the run has its ``points``; later edges are ignored, as are edges with the trigger
        input at ``IGN`` or no run armed. With ``period_s`` shorter than the averaging time, an
        edge that comes while a sample is still averaging is lost (as on the instrument).

        Args:
            powers_W: ``(n, ports)`` optical powers at the ports at each edge, W.
            period_s: time between edges, s; None: slow enough for every edge to log.

        Returns:
            The samples logged (``<= n``).

        Raises:
            ValueError: ``powers_W`` is not ``(n, ports)``.
        """
        powers = np.asarray(powers_W, dtype=np.float64)
        if powers.ndim != 2 or powers.shape[1] != self.ports:
            raise ValueError(f"trigger_samples: powers_W must be (n, {self.ports}), not {powers.shape}")
        with self._lock:
            return self._edges(powers.shape[0], lambda rows: powers, period_s)

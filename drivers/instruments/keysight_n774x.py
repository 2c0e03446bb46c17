"""Keysight N7744A / N7745A multiport optical power meter (SCPI over LAN or GPIB).

| command | meaning |
| --- | --- |
| ``:SENS<p>:POW:UNIT 1`` | port p reads watts (0: dBm) |
| ``:SENS<p>:POW:WAV 1550NM`` | port p's wavelength |
| ``:SENS<p>:POW:RANG:AUTO 1`` / ``:SENS<p>:POW:RANG -20DBM`` | auto / fixed range |
| ``:SENS<p>:POW:ATIM 0.001S`` | port p's averaging time |
| ``:INIT1:CONT ON`` | measure continuously |
| ``:FETC:POW:ALL?`` | every port's latest reading: a block of little-endian float32 (may go to several meters first) |
| ``:READ<p>:POW?`` | one port, measured now |
| ``:TRIG1:INP IGN`` / ``SME`` | trigger input ignored / one logged sample per external trigger |
| ``:SENS1:FUNC:PAR:LOGG <points>,<atime>`` | logging: points per port, averaging time (s, shared by all ports) |
| ``:SENS1:FUNC:STAT LOGG,STAR`` / ``LOGG,STOP`` | start / stop logging |
| ``:SENS1:FUNC:STAT?`` | ``LOGGING_STABILITY,PROGRESS`` until ``LOGGING_STABILITY,COMPLETE`` |
| ``:SENS1:FUNC:RES:IND?`` | samples logged so far |
| ``:SENS<p>:FUNC:RES?`` | port p's logged samples: float32 block |
| ``:SYST:ERR?`` | oldest error, ``+0,"No error"`` when none |

Logging (the N774x's logging function) takes ``points`` samples on every port, each averaged over
the same averaging time, into a buffer of up to 1 M samples per port; the power range stays
fixed while it runs. With ``:TRIG1:INP SME`` each rising edge on the trigger input takes one
sample, so a sweep's sample clock wired to that input gets one reading per sweep sample, read
back in one block per port.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.rig import InstrumentError, InstrumentIdentity, LimitError

from .meter import PowerMeter

#: Ports by model.
PORTS: dict[str, int] = {"N7744A": 4, "N7745A": 8, "N7744C": 4, "N7745C": 8, "N7747A": 2, "N7748A": 4}

#: Samples each port buffers in one logging run (N774x: 1 M per channel).
LOG_POINTS_MAX = 1_000_000
#: Averaging time of one sample, ``(shortest, longest)``, s (N774x: 1 us to 10 s).
AVERAGING_RANGE_S = (1e-6, 10.0)


class N774xSettings(BaseModel):
    """``settings`` of an N774x power meter."""

    model_config = ConfigDict(extra="forbid")

    averaging_time_s: float = Field(1e-3, gt=0, description="Averaging time of every port, s.")
    wavelength_nm: float = Field(1550.0, gt=0, description="Wavelength the ports are calibrated for, nm.")
    range_dBm: float | None = Field(None, description="Fixed power range, dBm; null: auto range.")
    log_timeout_s: float = Field(60.0, gt=0, description="Longest wait for a logging run to complete, s.")
    poll_interval_s: float = Field(0.01, ge=0, description="Pause between logging status polls, s.")
    bus_rate_B_per_s: float = Field(
        5e6, gt=0, description="Bytes per second the link carries a logged block at (the lab-time ledger), B/s.")


def block_bytes(samples: int) -> int:
    """Bytes of an IEEE-488.2 definite-length block of ``samples`` float32 and its newline."""
    data = 4 * samples
    return 2 + len(str(data)) + data + 1


class KeysightN774x(PowerMeter):
    """N7744A (4 ports) / N7745A (8 ports): all ports at once as a float32 block, or logged."""

    settings_model: ClassVar[type[N774xSettings]] = N774xSettings
    settings: N774xSettings

    #: Logs one sample per external trigger (the rig's ``LoggingPowerMeter`` capability).
    logs_on_trigger: ClassVar[bool] = True
    #: Samples per port of one logging run.
    log_points_max: ClassVar[int] = LOG_POINTS_MAX
    #: Averaging time of a logged sample, ``(shortest, longest)``, s.
    averaging_range_s: ClassVar[tuple[float, float]] = AVERAGING_RANGE_S

    #: Pause and clock used while polling a logging run (replaceable in tests).
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, resource: Any, name: str, settings: BaseModel | None = None) -> None:
        super().__init__(resource, name, settings)
        self._ports: int | None = None
        #: The trigger input may be armed or a log running: :meth:`disarm` before closing.
        self._armed = False
        #: ``(points, averaging_s)`` of the run started and not yet fetched.
        self._log: tuple[int, float] | None = None

    def identify(self) -> InstrumentIdentity:
        """``*IDN?`` (reads only); ports follow from the model."""
        identity = self.query("*IDN?")
        fields = [f.strip() for f in identity.split(",")]
        model = fields[1] if len(fields) > 1 else ""
        if model not in PORTS:
            raise InstrumentError(f"not an N774x power meter: {identity!r}", self.name, None, "*IDN?")
        return InstrumentIdentity(identity, model, PORTS[model])

    @property
    def ports(self) -> int:
        """Number of ports (asks the instrument once)."""
        if self._ports is None:
            self._ports = self.identify().channels
        return self._ports

    def configure(self) -> None:
        """Stop any logging left running (a meter keeps logging across connections and refuses
        range changes while it does), then watts, wavelength, range and averaging time on every
        port; measure continuously."""
        s = self.settings
        sent = [":SENS1:FUNC:STAT LOGG,STOP", ":TRIG1:INP IGN"]
        for port in range(1, self.ports + 1):
            sent += [
                f":SENS{port}:POW:UNIT 1",
                f":SENS{port}:POW:WAV {s.wavelength_nm:g}NM",
                f":SENS{port}:POW:RANG:AUTO 1" if s.range_dBm is None else f":SENS{port}:POW:RANG {s.range_dBm:g}DBM",
                f":SENS{port}:POW:ATIM {s.averaging_time_s:g}S",
            ]
        sent.append(":INIT1:CONT ON")
        for command in sent:
            self.write(command)
        self._armed, self._log = False, None
        self.raise_scpi_error("configure")

    def fetch_power_W(self) -> NDArray[np.float64]:
        """``:FETC:POW:ALL?``: the latest reading of every port, ``(ports,)``, W."""
        ports = self.ports
        return self._checked(self.query_float32_block(":FETC:POW:ALL?"), ports)

    def request_power(self) -> None:
        """Send ``:FETC:POW:ALL?`` without waiting for the reply (read it with :meth:`receive_power_W`),
        so that several meters can answer at once."""
        self.ports  # noqa: B018 - asks the instrument first if it never has, not between the two
        self.write(":FETC:POW:ALL?")

    def receive_power_W(self) -> NDArray[np.float64]:
        """The reply to :meth:`request_power`: every port, ``(ports,)``, W."""
        return self._checked(self.read_float32_block(":FETC:POW:ALL?"), self.ports)

    def _checked(self, values: NDArray[np.float64], ports: int) -> NDArray[np.float64]:
        if values.size != ports:
            raise InstrumentError(f"expected {ports} readings, got {values.size}", self.name, None, ":FETC:POW:ALL?")
        return values

    def read_port_W(self, port: int) -> float:
        """``:READ<p>:POW?``: one port, measured now, W."""
        return self.query_number(f":READ{port}:POW?", port)

    # -- logging ------------------------------------------------------------------------------
    def check_log(self, points: Any, averaging_s: Any) -> tuple[int, float]:
        """A logging run's request, checked against the meter's limits; nothing is sent.

        Args:
            points: samples per port, ``1 .. log_points_max``.
            averaging_s: averaging time of each sample, s, within :attr:`averaging_range_s`.

        Returns:
            ``(points, averaging_s)`` as ``int`` and ``float``.

        Raises:
            ConfigError: ``points`` is not an integer or ``averaging_s`` not a finite number.
            LimitError: either lies outside the meter's range.
        """
        source = f"instrument {self.name!r}"
        if isinstance(points, bool) or not isinstance(points, Integral):
            raise ConfigError(f"logging points must be a whole number, not {points!r}; nothing was sent", source,
                              "points")
        if isinstance(averaging_s, bool) or not isinstance(averaging_s, Real) or not math.isfinite(averaging_s):
            raise ConfigError(f"logging averaging time must be a finite number of seconds, not {averaging_s!r}; "
                              "nothing was sent", source, "averaging_s")
        points, averaging_s = int(points), float(averaging_s)
        if not 1 <= points <= self.log_points_max:
            limit = 1 if points < 1 else self.log_points_max
            raise LimitError(self.name, None, points, limit, "samples", "logging points per port")
        low, high = self.averaging_range_s
        if not low <= averaging_s <= high:
            raise LimitError(self.name, None, averaging_s, low if averaging_s < low else high, "s",
                             "logging averaging time")
        return points, averaging_s

    def log_transfer_s(self, points: int) -> float:
        """Time the link takes to carry one run's logged blocks (every port), s, at
        ``bus_rate_B_per_s``."""
        return self.ports * block_bytes(points) / self.settings.bus_rate_B_per_s

    def logging_instrument_time_s(self, points: int, averaging_s: float) -> float:
        """The instrument time a logging run costs, s: ``points`` samples of ``averaging_s`` each
        (at least; with ``SME`` the trigger period sets the pace) plus the transfer of its blocks
        (:meth:`log_transfer_s`). The sampling part runs while the sweep that triggers it runs;
        a ledger that already counts the sweep's clock adds only :meth:`log_transfer_s`.

        Raises:
            ConfigError, LimitError: as :meth:`check_log`.
        """
        points, averaging_s = self.check_log(points, averaging_s)
        return points * averaging_s + self.log_transfer_s(points)

    def arm_log(self, points: int, averaging_s: float) -> None:
        """Arm a logging run of one sample per external trigger (``:TRIG1:INP SME``).

        The meter then takes ``points`` samples on every port, each averaged over
        ``averaging_s``, one at each rising edge on its trigger input; the trigger period must
        be at least ``averaging_s`` (a trigger during an averaging is lost). The power range
        stays fixed while it logs: set ``range_dBm`` for a sweep whose powers change by decades.
        Read the samples with :meth:`fetch_log_W`.

        Raises:
            ConfigError, LimitError: a bad request (:meth:`check_log`), before anything is sent.
            InstrumentError: the meter reports an error (the run is disarmed again).
        """
        points, averaging_s = self.check_log(points, averaging_s)
        self._start_log(points, averaging_s, "SME")

    def fetch_log_W(self, timeout_s: float) -> NDArray[np.float64]:
        """Wait for the armed run to complete, then read every port's samples.

        Polls ``:SENS1:FUNC:STAT?`` (at once, then every ``poll_interval_s``) until it reports
        ``COMPLETE``, then reads ``:SENS<p>:FUNC:RES?`` of each port (one float32 block each).

        Args:
            timeout_s: longest wait for the run to complete, s.

        Returns:
            ``(points, ports)`` optical powers, W (port p in column p - 1).

        Raises:
            InstrumentError: no run armed; the run is not complete within ``timeout_s`` (naming how
                many samples were logged; the run is disarmed); a block that is malformed, short,
                or holds a value that is not finite.
        """
        if isinstance(timeout_s, bool) or not (isinstance(timeout_s, Real) and math.isfinite(timeout_s)
                                               and timeout_s > 0):
            raise ConfigError(f"logging timeout must be a positive number of seconds, not {timeout_s!r}",
                              f"instrument {self.name!r}", "timeout_s")
        return np.stack(self._await_log(float(timeout_s), "triggers arrived"), axis=1)

    def disarm(self) -> None:
        """Stop logging and ignore the trigger input (``:SENS1:FUNC:STAT LOGG,STOP``,
        ``:TRIG1:INP IGN``, in one transfer); any run not yet fetched is dropped."""
        self._log = None
        self.write_lines([":SENS1:FUNC:STAT LOGG,STOP", ":TRIG1:INP IGN"])
        self._armed = False

    def safe_state(self) -> None:
        """Disarm, if a logging run may be armed (nothing is sent otherwise)."""
        if self._armed:
            self.disarm()

    def close(self) -> None:
        """Disarm (when armed; a failure to is ignored, the link may be gone), then close."""
        try:
            self.safe_state()
        except InstrumentError:
            pass
        finally:
            super().close()

    def log_power_W(self, points: int, averaging_time_s: float | None = None) -> NDArray[np.float64]:
        """Log ``points`` samples on every port at once, on the meter's own clock (trigger input
        ignored): the run takes ``points * averaging time``.

        Args:
            points: samples per port (up to 1 M).
            averaging_time_s: averaging time of each sample, s; default: the settings'.

        Returns:
            ``(ports, points)`` powers, W.

        Raises:
            ConfigError, LimitError: a bad request, before anything is sent.
            InstrumentError: the run does not complete within ``log_timeout_s``, or the
                instrument reports an error.
        """
        atime = self.settings.averaging_time_s if averaging_time_s is None else averaging_time_s
        points, atime = self.check_log(points, atime)
        self._start_log(points, atime, "IGN")
        logged = np.stack(self._await_log(self.settings.log_timeout_s, "samples logged"))
        self.disarm()
        return logged

    def _start_log(self, points: int, averaging_s: float, trigger: str) -> None:
        """Stop any run, set the trigger input, the run's size and averaging time, start it."""
        self.ports  # noqa: B018 - asks the instrument who it is before anything is set
        start = [":SENS1:FUNC:STAT LOGG,STOP", f":TRIG1:INP {trigger}",
                 f":SENS1:FUNC:PAR:LOGG {points},{averaging_s:g}", ":SENS1:FUNC:STAT LOGG,STAR"]
        self._armed, self._log = True, None
        self.write_lines(start)
        try:
            self.raise_scpi_error("; ".join(start))
        except InstrumentError:
            self.safe_state()
            raise
        self._log = (points, averaging_s)

    def _await_log(self, timeout_s: float, counted: str) -> list[NDArray[np.float64]]:
        """Poll until the run completes, then read it: each port's ``(points,)`` W."""
        if self._log is None:
            raise InstrumentError("no logging run is armed (arm_log first)", self.name, None, ":SENS1:FUNC:RES?")
        points, _ = self._log
        deadline = self.clock() + timeout_s
        while not _complete(status := self.query(":SENS1:FUNC:STAT?")):
            if status.upper().startswith("NONE"):
                self.disarm()
                raise InstrumentError(f"no logging run on the meter ({status}): stopped or reset by someone else",
                                      self.name, None, ":SENS1:FUNC:STAT?")
            now = self.clock()
            if now >= deadline:
                logged = self._samples_logged()
                arrived = f"{logged} of {points}" if logged is not None else f"fewer than {points}"
                try:
                    self.disarm()
                    stopped = "the run is stopped"
                except InstrumentError as exc:
                    stopped = f"and it could not be stopped: {exc.message}"
                raise InstrumentError(
                    f"logging not complete after {timeout_s:g} s ({status}): {arrived} {counted}; {stopped}",
                    self.name, None, ":SENS1:FUNC:STAT?")
            self.sleep(min(self.settings.poll_interval_s, deadline - now))
        blocks = [self._logged_block(port, points) for port in range(1, self.ports + 1)]
        self._log = None
        return blocks

    def _logged_block(self, port: int, points: int) -> NDArray[np.float64]:
        """``:SENS<p>:FUNC:RES?``: port p's ``points`` samples, W, each finite."""
        command = f":SENS{port}:FUNC:RES?"
        block = self.query_float32_block(command, port)
        if block.size != points:
            raise InstrumentError(f"expected {points} logged samples, got {block.size}", self.name, port, command)
        bad = np.flatnonzero(~np.isfinite(block))
        if bad.size:
            raise InstrumentError(f"logged sample {bad[0]} is {block[bad[0]]} ({bad.size} not finite)", self.name,
                                  port, command)
        return block

    def _samples_logged(self) -> int | None:
        """``:SENS1:FUNC:RES:IND?``: samples logged so far, or None if the meter does not say."""
        try:
            value = self.query_number(":SENS1:FUNC:RES:IND?")
        except InstrumentError:
            return None
        return int(value) if value >= 0 else None


def _complete(status: str) -> bool:
    """Whether a ``:SENS1:FUNC:STAT?`` reply reports a finished logging run
    (``LOGGING_STABILITY,COMPLETE``; ``NONE,...`` means there is no run at all)."""
    function, _, state = status.upper().partition(",")
    return function.startswith("LOGG") and state.strip() == "COMPLETE"

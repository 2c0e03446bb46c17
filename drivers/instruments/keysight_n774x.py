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
| ``:SENS1:FUNC:PAR:LOGG <points>,<atime>`` | logging: points per port, averaging time (s, shared) |
| ``:SENS1:FUNC:STAT LOGG,STAR`` / ``LOGG,STOP`` | start / stop logging |
| ``:SENS1:FUNC:STAT?`` | e.g. ``LOGGING_STABILITY,PROGRESS`` until ``...,COMPLETE`` |
| ``:SENS<p>:FUNC:RES?`` | port p's logged samples: float32 block |
| ``:SYST:ERR?`` | oldest error, ``+0,"No error"`` when none |
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.rig import InstrumentError, InstrumentIdentity

from .meter import PowerMeter

#: Ports by model.
PORTS: dict[str, int] = {"N7744A": 4, "N7745A": 8, "N7744C": 4, "N7745C": 8, "N7747A": 2, "N7748A": 4}


class N774xSettings(BaseModel):
    """``settings`` of an N774x power meter."""

    model_config = ConfigDict(extra="forbid")

    averaging_time_s: float = Field(1e-3, gt=0, description="Averaging time of every port, s.")
    wavelength_nm: float = Field(1550.0, gt=0, description="Wavelength the ports are calibrated for, nm.")
    range_dBm: float | None = Field(None, description="Fixed power range, dBm; null: auto range.")
    log_timeout_s: float = Field(60.0, gt=0, description="Longest wait for a logging run to complete, s.")
    poll_interval_s: float = Field(0.01, ge=0, description="Pause between logging status polls, s.")


class KeysightN774x(PowerMeter):
    """N7744A (4 ports) / N7745A (8 ports): all ports at once as a float32 block, or logged."""

    settings_model: ClassVar[type[N774xSettings]] = N774xSettings
    settings: N774xSettings

    #: Pause and clock used while polling a logging run (replaceable in tests).
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, resource: Any, name: str, settings: BaseModel | None = None) -> None:
        super().__init__(resource, name, settings)
        self._ports: int | None = None

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
        """Watts, wavelength, range and averaging time on every port; measure continuously."""
        s = self.settings
        sent: list[str] = []
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

    def log_power_W(self, points: int, averaging_time_s: float | None = None) -> NDArray[np.float64]:
        """Log ``points`` samples on every port at once.

        Args:
            points: samples per port (up to 1 M).
            averaging_time_s: averaging time of each sample, s; default: the settings'.

        Returns:
            ``(ports, points)`` powers, W.

        Raises:
            InstrumentError: the run does not complete within ``log_timeout_s``, or the
                instrument reports an error.
        """
        ports = self.ports
        atime = self.settings.averaging_time_s if averaging_time_s is None else averaging_time_s
        start = [":SENS1:FUNC:STAT LOGG,STOP", f":SENS1:FUNC:PAR:LOGG {points},{atime:g}", ":SENS1:FUNC:STAT LOGG,STAR"]
        for command in start:
            self.write(command)
        self.raise_scpi_error("; ".join(start))
        deadline = self.clock() + self.settings.log_timeout_s
        while "COMPLETE" not in self.query(":SENS1:FUNC:STAT?").upper():
            if self.clock() > deadline:
                self.write(":SENS1:FUNC:STAT LOGG,STOP")
                raise InstrumentError(
                    f"logging did not complete within {self.settings.log_timeout_s} s",
                    self.name,
                    None,
                    ":SENS1:FUNC:STAT?",
                )
            self.sleep(self.settings.poll_interval_s)
        blocks = [self.query_float32_block(f":SENS{port}:FUNC:RES?", port) for port in range(1, ports + 1)]
        self.write(":SENS1:FUNC:STAT LOGG,STOP")
        short = [port for port, block in enumerate(blocks, 1) if block.size != points]
        if short:
            raise InstrumentError(
                f"expected {points} samples, got {blocks[short[0] - 1].size}",
                self.name,
                short[0],
                f":SENS{short[0]}:FUNC:RES?",
            )
        return np.stack(blocks)

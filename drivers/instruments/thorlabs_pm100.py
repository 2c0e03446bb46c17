"""Thorlabs PM100D / PM100USB single-port optical power meter (SCPI over USB-TMC).

| command | meaning |
| --- | --- |
| ``SENS:CORR:WAV 1550`` | wavelength, nm |
| ``SENS:POW:UNIT W`` | read watts |
| ``SENS:RANGE:AUTO ON`` | auto range |
| ``SENS:AVER:COUN 10`` | samples averaged per reading (about 3 ms each) |
| ``MEAS:POW?`` | measure now, W |
| ``SYST:ERR?`` | oldest error, ``0,"No error"`` when none |

A few hundred readings a second at best: for many ports use an N774x.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.rig import InstrumentError, InstrumentIdentity

from .meter import PowerMeter


class PM100Settings(BaseModel):
    """``settings`` of a PM100."""

    model_config = ConfigDict(extra="forbid")

    wavelength_nm: float = Field(1550.0, gt=0, description="Wavelength the sensor is corrected for, nm.")
    averages: int = Field(1, ge=1, description="Samples averaged per reading.")


class ThorlabsPM100(PowerMeter):
    """PM100D / PM100USB: one port."""

    settings_model: ClassVar[type[PM100Settings]] = PM100Settings
    settings: PM100Settings

    def identify(self) -> InstrumentIdentity:
        """``*IDN?`` (reads only)."""
        identity = self.query("*IDN?")
        fields = [f.strip() for f in identity.split(",")]
        if len(fields) < 2 or not fields[1].startswith("PM100"):
            raise InstrumentError(f"not a PM100: {identity!r}", self.name, None, "*IDN?")
        return InstrumentIdentity(identity, fields[1], 1)

    def configure(self) -> None:
        """Wavelength, watts, auto range and averaging."""
        sent = [f"SENS:CORR:WAV {self.settings.wavelength_nm:g}", "SENS:POW:UNIT W", "SENS:RANGE:AUTO ON",
                f"SENS:AVER:COUN {self.settings.averages}"]
        for command in sent:
            self.write(command)
        self.raise_scpi_error("configure")

    def read_power_W(self) -> float:
        """``MEAS:POW?``: the power now, W."""
        return self.query_number("MEAS:POW?", 1)

    def fetch_power_W(self) -> NDArray[np.float64]:
        """The power now as a one-port array, ``(1,)``, W."""
        return np.array([self.read_power_W()])

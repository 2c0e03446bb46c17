"""Keithley 2600-series SMU (TSP) as one or two heater channels: channel 0 is ``smua``, 1 ``smub``.

| command | meaning |
| --- | --- |
| ``smua.source.func = smua.OUTPUT_DCVOLTS`` | source voltage |
| ``smua.source.limiti = 0.02`` | current compliance, A |
| ``smua.source.levelv = 1.2340`` | output level, V |
| ``smua.source.output = smua.OUTPUT_ON`` | output on (``OUTPUT_OFF``: off) |
| ``print(smua.measure.v())``, ``print(smua.measure.i())`` | measured V, A |
| ``print(errorqueue.count)``, ``print(errorqueue.next())`` | the error queue |

TSP assignments have no reply, so after every batch of writes the driver reads
``errorqueue.count`` and raises the oldest error, naming the commands sent.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.rig import InstrumentError, InstrumentIdentity

from .heater import HeaterDriver
from .limits import Unit

SMUS = ("smua", "smub")

#: Full scale by model series: (voltage V, DC current mA).
SERIES_FULL_SCALE: dict[str, tuple[float, float]] = {
    "260": (40.0, 3000.0),
    "261": (200.0, 1500.0),
    "263": (200.0, 1500.0),
}


class Keithley2600(HeaterDriver):
    """A Keithley 2601B/2602B/2611B/2612B/2635B/2636B sourcing voltage into one or two heaters."""

    def _write_values(self, channels: NDArray[np.intp], values: NDArray[np.float64], unit: Unit) -> None:
        if unit != "V":
            raise NotImplementedError(f"{type(self).__name__} drives heaters by voltage only")
        sent = [
            f"{SMUS[ch]}.source.levelv = {v:.{self.decimals['V']}f}" for ch, v in zip(channels, values, strict=True)
        ]
        for command in sent:
            self.write(command)
        self.raise_errors("; ".join(sent), int(channels[0]) if channels.size == 1 else None)

    def _read_voltages_V(self, channels: NDArray[np.intp]) -> NDArray[np.float64]:
        return np.array([self.query_number(f"print({SMUS[ch]}.measure.v())", int(ch)) for ch in channels])

    def read_currents_mA(self) -> NDArray[np.float64]:
        """Measured heater currents of every channel in use, mA."""
        return np.array([self.query_number(f"print({SMUS[ch]}.measure.i())", ch) * 1e3 for ch in range(self.channels)])

    def raise_errors(self, after: str, channel: int | None = None) -> None:
        """Raise the oldest entry of the TSP error queue, if any (``after``: the commands sent)."""
        if self.query_number("print(errorqueue.count)") == 0:
            return
        fields = self.query("print(errorqueue.next())").split("\t")  # code, message, severity, node
        message = fields[1] if len(fields) > 1 else ""
        raise InstrumentError(f"error {fields[0]}: {message}", self.name, channel, after)

    def configure(self) -> None:
        """Source voltage with the configured current compliance, go to the safe state, output on."""
        for ch in range(self.channels):
            smu = SMUS[ch]
            sent = [f"{smu}.source.func = {smu}.OUTPUT_DCVOLTS",
                    f"{smu}.source.limiti = {self.limits.current_max_mA[ch] / 1e3:.6f}"]
            for command in sent:
                self.write(command, ch)
            self.raise_errors("; ".join(sent), ch)
        self.safe_state()
        for ch in range(self.channels):
            self.write(f"{SMUS[ch]}.source.output = {SMUS[ch]}.OUTPUT_ON", ch)
        self.raise_errors("output on")

    def output_off(self) -> None:
        """Switch every channel's output off (after going to the safe state)."""
        self.safe_state()
        for ch in range(self.channels):
            self.write(f"{SMUS[ch]}.source.output = {SMUS[ch]}.OUTPUT_OFF", ch)
        self.raise_errors("output off")

    def identify(self) -> InstrumentIdentity:
        """``*IDN?`` (reads only); channels and full scale follow from the model number."""
        identity = self.query("*IDN?")
        match = re.search(r"(26\d\d)[A-Z]?", identity)
        if match is None:
            raise InstrumentError(f"not a Keithley 2600: {identity!r}", self.name, None, "*IDN?")
        model = match.group(0)
        volts, milliamps = SERIES_FULL_SCALE.get(model[:3], (40.0, 1000.0))
        channels = 1 if int(model[3]) % 2 else 2
        return InstrumentIdentity(identity, model, channels, (-volts, volts), milliamps)

"""The Qontrol Q8iv / Q8b command set, served by an emulated instrument (see
:mod:`drivers.instruments.qontrol` for the client side).

Outputs are held per channel in volts (current-mode channels as ``I R``). A set beyond the
channel's ``VMAX`` (or full scale, or below 0) answers ``E01:<ch>``, a current beyond ``IMAX``
``E02:<ch>``, a line longer than the input buffer ``E14:00``, anything unknown ``E10:00``.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

from .instrument import EmulationContext

_SET = re.compile(r"^(VVEC|VMAX|IMAX|V|I)(\d+)=(.+)$")
_GET = re.compile(r"^(VMAX|IMAX|V|I)(\d+)\?$")

#: Full scale by model: (V, mA).
FULL_SCALE = {"Q8iv": (12.0, 24.0), "Q8b": (12.0, 83.333)}


def emulate(context: EmulationContext) -> "QontrolEmulator":
    """The emulator of a Qontrol heater instrument of an emulated rig (entry point ``qontrol`` of
    ``ffzero_lab.emulated_instruments``): whole Q8 modules of 8 channels, the channels in use
    with the file's heater resistances, the rest with 1 kohm."""
    resistance = context.resistance_ohm()
    modules = -(-resistance.size // 8)
    resistance = np.concatenate([resistance, np.full(8 * modules - resistance.size, 1e3)])
    return QontrolEmulator(resistance, context.model or "Q8iv")


class QontrolEmulator:
    """An emulated Q8iv / Q8b daisy chain.

    Args:
        resistance_ohm: ``(channels,)`` the heater on each channel, ohm (sets currents).
        model: ``Q8iv`` or ``Q8b``.
        serial: the serial number in the ``id?`` reply.
        buffer_chars: longest command line accepted; longer ones answer ``E14:00``.
    """

    def __init__(self, resistance_ohm: NDArray[np.float64], model: str = "Q8iv", serial: str = "0001",
                 buffer_chars: int = 256) -> None:
        self.model, self.serial, self.buffer_chars = model, serial, buffer_chars
        self.vfull, self.ifull = FULL_SCALE[model]
        self.resistance_ohm = np.asarray(resistance_ohm, dtype=np.float64)
        n = self.resistance_ohm.size
        self.volts = np.zeros(n)
        self.version = 0  # counts changes of the outputs
        self.vmax = np.full(n, self.vfull)
        self.imax = np.full(n, self.ifull)

    @property
    def channels(self) -> int:
        return int(self.volts.size)

    def handle(self, line: str) -> list[bytes]:
        """One command line -> its reply lines."""
        replies = self._reply(line)
        return [r.encode("ascii") + b"\n" for r in replies]

    def _reply(self, line: str) -> list[str]:
        if len(line) > self.buffer_chars:
            return ["E14:00"]
        queries = {"id?": f"{self.model}-{self.serial}", "nchan?": str(self.channels),
                   "vfull?": f"{self.vfull:.3f} V", "ifull?": f"{self.ifull:.3f} mA"}
        if line in queries:
            return [queries[line]]
        if line == "Vall?":
            return [f"{v:.4f}" for v in self.volts]
        if line == "Iall?":
            return [f"{i:.3f}" for i in self.milliamps()]
        if (get := _GET.match(line)) is not None:
            return self._get(get.group(1), int(get.group(2)))
        if (set_ := _SET.match(line)) is not None:
            return self._set(set_.group(1), int(set_.group(2)), set_.group(3))
        return ["E10:00"]

    def milliamps(self) -> NDArray[np.float64]:
        """Heater currents now, mA."""
        return self.volts / self.resistance_ohm * 1e3

    def _get(self, what: str, channel: int) -> list[str]:
        if channel >= self.channels:
            return [f"E12:{channel:02d}"]
        values = {"V": self.volts, "VMAX": self.vmax, "I": self.milliamps(), "IMAX": self.imax}
        return [f"{values[what][channel]:.4f}"]

    def _set(self, what: str, first: int, text: str) -> list[str]:
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            return [f"E11:{first:02d}"]
        if first + len(values) > self.channels or (what != "VVEC" and len(values) != 1):
            return [f"E12:{first:02d}"]
        if what in ("VMAX", "IMAX"):
            (self.vmax if what == "VMAX" else self.imax)[first] = values[0]
            return ["OK"]
        channels = np.arange(first, first + len(values))
        volts = np.array(values) * (self.resistance_ohm[channels] / 1e3 if what == "I" else 1.0)
        over_v = (volts > np.minimum(self.vmax[channels], self.vfull)) | (volts < 0)
        over_i = volts / self.resistance_ohm[channels] * 1e3 > np.minimum(self.imax[channels], self.ifull)
        for code, bad in ((1, over_v), (2, over_i)):
            if bad.any():
                return [f"E{code:02d}:{channels[bad][0]:02d}"]
        self.volts[channels] = volts
        self.version += 1
        return ["OK"]

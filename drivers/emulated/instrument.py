"""What an emulated instrument is and what it is made from: the interface between the emulated
rig (:mod:`.rig`) and the emulators of single instruments, which are found by entry point
(group ``ffzero_lab.emulated_instruments``, named as their driver's entry point in
``ffzero_lab.instruments``) or named in the emulated rig file as ``module:function``.

An emulator factory is a function ``(EmulationContext) -> EmulatedInstrument``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.rig import InstrumentConfig, RigConfig

#: ``read_power_W(ports, samples)`` -> ``(ports, samples)`` optical powers at a power meter's
#: ports 1..ports, W (ports the layers do not map read 0 W).
PowerReader = Callable[[int, int], NDArray[np.float64]]


@dataclass(frozen=True)
class EmulationContext:
    """What an emulator factory gets.

    Attributes:
        name: the instrument's name in ``instruments.yaml``.
        rig: the instruments file the emulated rig plays.
        model: ``instruments.<name>.model`` of the emulated rig file, or None (the emulator's default).
        read_power_W: the chip's optical powers at this instrument's ports (power meters).
    """

    name: str
    rig: RigConfig
    model: str | None
    read_power_W: PowerReader

    @property
    def config(self) -> InstrumentConfig:
        """The instrument's section of ``instruments.yaml``."""
        return self.rig.instruments[self.name]

    def resistance_ohm(self) -> NDArray[np.float64]:
        """``(channels,)`` the heater resistance of each channel in use, ohm (heater instruments)."""
        return np.array([limits.resistance_ohm for limits in self.rig.heater_channel_limits(self.name)])


class EmulatedInstrument(Protocol):
    """An instrument behind a :class:`~.server.LineServer`.

    ``handle`` gets one command line (without its ``\\n``) and returns the complete reply
    messages, each with its terminator (none for a command without a reply). An emulated heater
    instrument also has ``volts``, ``(channels,)`` its present output voltages, V, and
    ``version``, a counter it increases whenever ``volts`` changes (the chip model reads both).
    """

    def handle(self, line: str) -> list[bytes]:
        """One command line -> its reply messages."""
        ...

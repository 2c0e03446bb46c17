"""The emulated chip behind an emulated NI-DAQmx bench: the device model of
:mod:`drivers.emulated.daqmx` for the NI instruments of an ``instruments.yaml``.

Each NI instrument's ``resource`` is its DAQmx device name: an analog-output device drives that
heater instrument's channels (mesh phases, input modulators), an analog-input device reads that
power meter's ports (AI channel p - 1 is port p) through photodiode amplifiers,
``V = dark_V + tia_gain_V_per_A x responsivity_A_per_W x P`` (the instrument's settings). The chip
is :class:`drivers.emulated.chip.EmulatedChip`: the same physics as the software-timed emulated
rig, batched over a whole acquisition (the distinct heater settings first, then every tick's
inputs through its setting's matrix). For ``heater_settle_s`` after a heater sample changes the
chip still shows the previous setting, so samples a sweep should drop read the wrong setting.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from drivers.instruments.ni.analog_input import NiAnalogInput, NiInputSettings
from drivers.instruments.ni.analog_output import NiAnalogOutput
from ffzero_lab.rig import RigConfig, resolve_driver_class

from .chip import EmulatedChip


def ni_kind(driver: str) -> Literal["ao", "ai"] | None:
    """Which NI-DAQmx device this bench plays for an instrument's ``driver`` (an entry-point name or
    ``module:Class``): ``"ao"`` for an analog-output driver (or a subclass), ``"ai"`` for an
    analog-input one, None for any other driver."""
    cls = resolve_driver_class(driver, "instruments file", "driver")
    if issubclass(cls, NiAnalogOutput):
        return "ao"
    if issubclass(cls, NiAnalogInput):
        return "ai"
    return None

_INDEX = re.compile(r"(\d+)$")


class ChipBench:
    """``respond_held(held, ai_channels)`` for an emulated DAQmx server (see the module docstring).

    Args:
        chip: the emulated chip of ``rig``.
        rig: the instruments file; its NI instruments' resources are the device names.
    """

    def __init__(self, chip: EmulatedChip, rig: RigConfig) -> None:
        self.chip, self.rig = chip, rig
        self.outputs = {inst.resource: name for name, inst in rig.instruments.items() if ni_kind(inst.driver) == "ao"}
        self.inputs: dict[str, tuple[str, NDArray[np.float64], NDArray[np.float64]]] = {}
        for name, inst in rig.instruments.items():
            if ni_kind(inst.driver) == "ai":
                settings = NiInputSettings.model_validate(inst.settings)
                gain = settings.per_port("tia_gain_V_per_A") * settings.per_port("responsivity_A_per_W")
                self.inputs[inst.resource] = (name, gain, settings.per_port("dark_V"))
        self.phased = {ref.instrument for layer in rig.layers for ref in layer.phases.values()}
        #: meter -> [(layer, its modes, the ports reading them (from 0))]
        self.meters = chip._meters

    def respond_held(self, held: dict[str, tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]],
                     ai_channels: tuple[str, ...]) -> NDArray[np.float64]:
        """AI volts ``(len(ai_channels), n)`` for what every AO device held at the n ticks."""
        slow = [d for d in held if self.outputs.get(d) in self.phased]
        index = []
        for device in slow:
            _, k, since = held[device]
            index.append(np.where(since < self.chip.settings.heater_settle_s - 1e-9, np.maximum(k - 1, 0), k))
        n = next(iter(held.values()))[1].shape[0]
        if index:
            distinct, setting = np.unique(np.stack(index), axis=1, return_inverse=True)
        else:
            distinct, setting = np.zeros((0, 1), dtype=np.int64), np.zeros(n, dtype=np.int64)
        setting = setting.reshape(-1)
        settings = {self.outputs[d]: held[d][0][:, distinct[j]].T for j, d in enumerate(slow)}
        ticks = {self.outputs[d]: held[d][0][:, held[d][1]].T for d in held if d in self.outputs and d not in slow}
        powers = self.chip.sweep_powers_W(settings, setting, ticks)
        out = np.zeros((len(ai_channels), n))
        for row, physical in enumerate(ai_channels):
            device, _, channel = physical.partition("/")
            found = self.inputs.get(device)
            match = _INDEX.search(channel)
            if found is None or match is None:
                continue
            meter, gain, dark = found
            port = int(match.group(1))
            for layer, modes, ports in self.meters.get(meter, []):
                hit = np.flatnonzero(ports == port)
                if hit.size:
                    out[row] = dark[port] + gain[port] * powers[layer][:, modes[hit[0]]]
        if self.chip.settings.noise:
            out *= 1.0 + self.chip.settings.noise * self.chip.rng.standard_normal(out.shape)
        return out

"""A simple chip behind the emulated rig: heater voltages -> phases -> MZI meshes -> port powers.

Each layer of ``instruments.yaml`` is a rectangular mesh of 2x2 MZIs (beam splitter, internal
phase theta, beam splitter, external phase phi) after input phases gamma. A heater's phase is
``phi0 + k V^2`` with ``phi0`` drawn once per channel from the seed and ``k = pi / (P_pi R)``.
Light enters every mode with equal power, scaled by its input modulator (an MZI amplitude
modulator: field ``sin(phase / 2)``) where it has one; each detector reads ``|field|^2`` of its
output mode with relative noise. Enough physics for a driver to see its writes in the readings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.instruments import LayerMap, RigConfig

_NAME = re.compile(r"^(theta|phi)\[(\d+),(\d+)\]$|^gamma\[(\d+)\]$")
_SPLITTER = np.array([[1.0, 1j], [1j, 1.0]]) / np.sqrt(2.0)


class ChipSettings(BaseModel):
    """``chip`` of an emulated rig file."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, description="Seeds each heater's phase offset phi0 and the noise.")
    p_pi_W: float = Field(0.025, gt=0, description="Heater power for a pi phase shift, W.")
    input_power_W: float = Field(1e-3, gt=0, description="Optical power into each mesh, shared by its modes, W.")
    noise: float = Field(0.0, ge=0, description="Relative Gaussian noise of every reading.")


def mzi(theta: float, phi: float) -> NDArray[np.complex128]:
    """2x2 transfer of one MZI acting on a column vector (theta = pi: bar, 0: cross)."""
    return _SPLITTER @ np.diag([np.exp(1j * theta), 1.0]) @ _SPLITTER @ np.diag([np.exp(1j * phi), 1.0])


def mesh_matrix(modes: int, phases: dict[str, float]) -> NDArray[np.complex128]:
    """``(N, N)`` transfer (outputs = U @ inputs) of a rectangular mesh; unnamed phases are 0."""
    u = np.diag(np.exp(1j * np.array([phases.get(f"gamma[{m}]", 0.0) for m in range(modes)])))
    for column in range(modes):
        layer = np.eye(modes, dtype=complex)
        first = column % 2
        for slot, top in enumerate(range(first, modes - 1, 2)):
            block = mzi(phases.get(f"theta[{column},{slot}]", 0.0), phases.get(f"phi[{column},{slot}]", 0.0))
            layer[top : top + 2, top : top + 2] = block
        u = layer @ u
    return u


@dataclass
class _Heater:
    instrument: str
    channel: int
    phi0: float
    k: float

    def phase(self, volts: dict[str, NDArray[np.float64]]) -> float:
        return self.phi0 + self.k * float(volts[self.instrument][self.channel]) ** 2


class EmulatedChip:
    """The optical response of the rig's layers to the heater instruments' voltages.

    Args:
        rig: the instruments file the emulator plays (layer maps, heater resistances).
        settings: chip settings.
    """

    def __init__(self, rig: RigConfig, settings: ChipSettings) -> None:
        self.rig, self.settings = rig, settings
        self.rng = np.random.default_rng(settings.seed)
        self._heaters: list[dict[str, _Heater]] = []
        self._modulators: list[dict[int, _Heater]] = []
        for layer in rig.layers:
            self._heaters.append({name: self._heater(ref.instrument, ref.channel) for name, ref in layer.phases.items()})
            self._modulators.append({m: self._heater(ref.instrument, ref.channel) for m, ref in layer.modulators.items()})

    def _heater(self, instrument: str, channel: int) -> _Heater:
        resistance = self.rig.heater_channel_limits(instrument)[channel].resistance_ohm
        return _Heater(instrument, channel, float(self.rng.uniform(0, 2 * np.pi)), np.pi / (self.settings.p_pi_W * resistance))

    def output_powers_W(self, index: int, volts: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """Noise-free power at each output mode of layer ``index``, W."""
        layer: LayerMap = self.rig.layers[index]
        phases = {name: h.phase(volts) for name, h in self._heaters[index].items()}
        amplitude = np.full(layer.modes, np.sqrt(self.settings.input_power_W / layer.modes), dtype=complex)
        for mode, modulator in self._modulators[index].items():
            amplitude[mode] *= np.sin(modulator.phase(volts) / 2)
        return np.abs(mesh_matrix(layer.modes, phases) @ amplitude) ** 2

    def port_powers_W(self, meter: str, ports: int, volts: dict[str, NDArray[np.float64]], samples: int = 1) -> NDArray[np.float64]:
        """``(ports, samples)`` readings of power meter ``meter``, W; unmapped ports read 0 W."""
        clean = np.zeros(ports)
        for index, layer in enumerate(self.rig.layers):
            detectors = [(mode, ref.port) for mode, ref in layer.detectors.items() if ref.instrument == meter]
            if detectors:
                powers = self.output_powers_W(index, volts)
                for mode, port in detectors:
                    clean[port - 1] = powers[mode]
        noise = 1.0 + self.settings.noise * self.rng.standard_normal((ports, samples))
        return clean[:, None] * noise

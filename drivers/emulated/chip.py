"""The chip behind the emulated rig: heater voltages -> phases -> MZI meshes -> port powers.

Each layer of ``instruments.yaml`` is a rectangular mesh in the rig's nominal design
(:mod:`ffzero_lab.hardware.optics`: what ``theta[c,s]``, ``phi[c,s]`` and ``gamma[m]`` mean). Every
heater channel of every heater instrument has its own phase law ``phi = phi0 + k V^2``, drawn once
from the seed: ``phi0`` uniform on [0, 2 pi), ``k = pi / (P_pi R)`` with the channel's ``P_pi`` spread
around the nominal one (``k_spread``), as fabrication spreads them on a real chip. Nothing outside
reads these laws but a test: the rig's software must find them by calibration.

Light enters every mode with equal power, through its input modulator where it has one (a one-armed
MZI: field ``(e^{i psi} - 1) / 2``); each detector reads ``|field|^2`` of its output mode with
relative noise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.hardware.optics import MeshOptics, mesh_phase_names, modulator_field
from ffzero_lab.instruments import RigConfig


class ChipSettings(BaseModel):
    """``chip`` of an emulated rig file."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, description="Seeds each heater's phase law and the noise.")
    p_pi_W: float = Field(0.025, gt=0, description="Nominal heater power for a pi phase shift, W.")
    k_spread: float = Field(0.03, ge=0, lt=0.3, description="Relative spread of each heater's P_pi (and k), "
                            "normal, cut at 2 standard deviations.")
    input_power_W: float = Field(1e-3, gt=0, description="Optical power into each mesh, shared by its modes, W.")
    noise: float = Field(0.0, ge=0, description="Relative Gaussian noise of every reading.")


class EmulatedChip:
    """The optical response of the rig's layers to the heater instruments' voltages.

    Args:
        rig: the instruments file the emulator plays (layer maps, heater resistances).
        settings: chip settings.

    Attributes:
        phi0_rad, k_rad_per_V2: instrument -> ``(channels,)`` the true phase law of every channel.
    """

    def __init__(self, rig: RigConfig, settings: ChipSettings) -> None:
        self.rig, self.settings = rig, settings
        self.rng = np.random.default_rng(settings.seed)
        self.phi0_rad: dict[str, NDArray[np.float64]] = {}
        self.k_rad_per_V2: dict[str, NDArray[np.float64]] = {}
        for name, inst in rig.instruments.items():
            if inst.channels is None:
                continue
            resistance = np.array([lim.resistance_ohm for lim in inst.channels.all_limits()])
            spread = np.clip(self.rng.standard_normal(resistance.size), -2.0, 2.0) * settings.k_spread
            self.phi0_rad[name] = self.rng.uniform(0, 2 * np.pi, resistance.size)
            self.k_rad_per_V2[name] = np.pi / (settings.p_pi_W * (1.0 + spread) * resistance)
        self._optics = []
        for layer in rig.layers:
            names = [n for n in mesh_phase_names(layer.modes) if n in layer.phases]
            refs = [(layer.phases[n].instrument, layer.phases[n].channel) for n in names]
            modulators = {m: (ref.instrument, ref.channel) for m, ref in layer.modulators.items()}
            self._optics.append((MeshOptics(layer.modes, names), refs, modulators))

    def phase(self, instrument: str, channel: int, volts: dict[str, NDArray[np.float64]]) -> float:
        """The phase of one heater channel at the instruments' voltages, rad."""
        v = float(volts[instrument][channel])
        return float(self.phi0_rad[instrument][channel] + self.k_rad_per_V2[instrument][channel] * v**2)

    def output_powers_W(self, index: int, volts: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """Noise-free power at each output mode of layer ``index``, W."""
        optics, refs, modulators = self._optics[index]
        phases = np.array([self.phase(inst, ch, volts) for inst, ch in refs])
        fields = np.full(optics.modes, np.sqrt(self.settings.input_power_W / optics.modes), dtype=complex)
        for mode, (inst, ch) in modulators.items():
            fields[mode] *= modulator_field(self.phase(inst, ch, volts))
        return optics.port_powers(phases[None], fields[:, None])[0, :, 0]

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

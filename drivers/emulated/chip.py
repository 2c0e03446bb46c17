"""The chip behind the emulated rig: heater voltages -> phases -> MZI meshes -> port powers.

Each layer of ``instruments.yaml`` is a rectangular mesh in the rig's nominal design
(:mod:`ffzero_lab.photonics.design`: what ``theta[c,s]``, ``phi[c,s]`` and ``gamma[m]`` mean). Every
heater channel of every heater instrument has its own phase law ``phi = phi0 + k V^2``, drawn once
from the seed: ``phi0`` uniform on [0, 2 pi), ``k = pi / (P_pi R)`` with the channel's ``P_pi`` spread
around the nominal one (``k_spread``), as fabrication spreads them on a real chip. Nothing outside
reads these laws but a test: the rig's software must find them by calibration.

Light enters every mode of a mesh with its own modulators with equal power, through its input
modulator where it has one (a one-armed MZI: field ``(e^{i psi} - 1) / 2``). A mesh fed optically
(``input: optical``) takes the fields of the mesh before it through the chip's electro-optic
activation (Williamson et al. 2019, as the simulated chip's ``drivers/simulated/activation.py``):
a fraction ``alpha`` of each mode's power is tapped to a photodiode, whose signal drives a phase
modulator on the rest,

    f(z) = j sqrt(1 - alpha) exp(-j (g |z|^2 + phi_b) / 2) cos((g |z|^2 + phi_b) / 2) z,

with ``g`` in rad per watt of the mode's power; the feeding mesh's detectors read those tapped
powers, ``alpha |z|^2``. Each detector reads with relative noise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.photonics.activation import electro_optic
from ffzero_lab.photonics.design import MeshOptics, mesh_phase_names, modulator_field
from ffzero_lab.photonics.heaters import PhaseLaws
from ffzero_lab.rig import RigConfig, group_by_instrument


class ActivationSettings(BaseModel):
    """``chip.activation``: the electro-optic activation between optically cascaded meshes."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(0.1, gt=0, lt=1, description="Power fraction tapped to each mode's photodiode (what the "
                         "feeding mesh's detectors read).")
    gain_rad_per_W: float = Field(0.0, description="Modulator phase per watt of the mode's power, rad/W.")
    bias_phase_rad: float = Field(0.0, description="Modulator bias phase phi_b, rad.")

    def __call__(self, fields: NDArray[np.complex128]) -> NDArray[np.complex128]:
        """``(..., N)`` fields (sqrt W) after the activation."""
        return electro_optic(fields, self.alpha, self.gain_rad_per_W, self.bias_phase_rad)


class ChipSettings(BaseModel):
    """``chip`` of an emulated rig file."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, description="Seeds each heater's phase law and the noise.")
    p_pi_W: float = Field(0.025, gt=0, description="Nominal heater power for a pi phase shift, W.")
    k_spread: float = Field(0.03, ge=0, lt=0.3, description="Relative spread of each heater's P_pi (and k), "
                            "normal, cut at 2 standard deviations.")
    input_power_W: float = Field(1e-3, gt=0, description="Optical power into each mesh, shared by its modes, W.")
    noise: float = Field(0.0, ge=0, description="Relative Gaussian noise of every reading.")
    heater_settle_s: float = Field(0.0, ge=0, description="Hardware-timed benches: for this long after a heater "
                                   "sample changes, the chip still shows the previous setting, s.")
    activation: ActivationSettings = Field(default_factory=ActivationSettings,
                                           description="Between a mesh and the next when that one is fed optically.")


class EmulatedChip:
    """The optical response of the rig's layers to the heater instruments' voltages.

    Args:
        rig: the instruments file the emulator plays (layer maps, heater resistances).
        settings: chip settings.

    Attributes:
        laws: instrument -> the true phase laws of its channels ``(channels,)``.
    """

    def __init__(self, rig: RigConfig, settings: ChipSettings) -> None:
        self.rig, self.settings = rig, settings
        self.rng = np.random.default_rng(settings.seed)
        self.laws: dict[str, PhaseLaws] = {}
        for name, inst in rig.instruments.items():
            if inst.channels is None:
                continue
            resistance = np.array([lim.resistance_ohm for lim in inst.channels.all_limits()])
            spread = np.clip(self.rng.standard_normal(resistance.size), -2.0, 2.0) * settings.k_spread
            phi0 = self.rng.uniform(0, 2 * np.pi, resistance.size)
            self.laws[name] = PhaseLaws.from_p_pi(phi0, settings.p_pi_W * (1.0 + spread), resistance)
        self._optics = []
        #: per layer: fed optically by the layer before; followed by an optically fed layer
        self._optical = [layer.input == "optical" for layer in rig.layers]
        self._tapped = self._optical[1:] + [False]
        for layer in rig.layers:
            names = [n for n in mesh_phase_names(layer.modes) if n in layer.phases]
            phases = _gather([layer.phases[n] for n in names])
            modes = sorted(layer.modulators)
            modulators = (np.array(modes, dtype=np.intp), _gather([layer.modulators[m] for m in modes]))
            self._optics.append((MeshOptics(layer.modes, names), phases, modulators))
        #: meter -> [(layer, its output modes, the ports reading them (from 0))]
        self._meters: dict[str, list[tuple[int, NDArray[np.intp], NDArray[np.intp]]]] = {}
        for index, layer in enumerate(rig.layers):
            by_meter: dict[str, tuple[list[int], list[int]]] = {}
            for mode, ref in layer.detectors.items():
                modes_, ports_ = by_meter.setdefault(ref.instrument, ([], []))
                modes_.append(mode)
                ports_.append(ref.port - 1)
            for meter, (modes_, ports_) in by_meter.items():
                self._meters.setdefault(meter, []).append(
                    (index, np.array(modes_, dtype=np.intp), np.array(ports_, dtype=np.intp)))
        # the last matrix and output powers of each layer, and the voltages they were computed at
        self._matrices: dict[int, tuple[NDArray[np.float64], NDArray[np.complex128]]] = {}
        self._outputs: dict[int, tuple[NDArray[np.complex128], NDArray[np.float64], NDArray[np.complex128]]] = {}
        self._state: object = None  # what the powers below were computed at
        self._powers: dict[int, NDArray[np.float64]] = {}  # layer -> output powers, W

    def phases(self, refs: "Gathered", volts: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """The phases of channels ``refs`` at the instruments' voltages, rad, ``(n,)``."""
        out = np.empty(refs.size)
        for name, (positions, channels) in refs.groups.items():
            out[positions] = self.laws[name].unwrapped_rad(volts[name][channels], channels)
        return out

    def _matrix(self, index: int, volts: dict[str, NDArray[np.float64]]) -> NDArray[np.complex128]:
        """Layer ``index``'s transfer matrix at the voltages (recomputed only when they changed)."""
        optics, refs, _ = self._optics[index]
        phases = self.phases(refs, volts)
        cached = self._matrices.get(index)
        if cached is None or not np.array_equal(cached[0], phases):
            cached = self._matrices[index] = (phases, optics.matrices(phases[None])[0])
        return cached[1]

    def output_fields(self, index: int, volts: dict[str, NDArray[np.float64]]) -> NDArray[np.complex128]:
        """Field at each output mode of layer ``index`` (before any tap), sqrt(W), ``(N,)``."""
        optics, _, (modes, refs) = self._optics[index]
        matrix = self._matrix(index, volts)
        if self._optical[index]:
            fields = self.settings.activation(self.output_fields(index - 1, volts))
            return (fields[:, None] * matrix).sum(axis=0)
        psi = self.phases(refs, volts)
        cached = self._outputs.get(index)
        if cached is not None and cached[0] is matrix and np.array_equal(cached[1], psi):
            return cached[2]
        fields = np.full(optics.modes, np.sqrt(self.settings.input_power_W / optics.modes), dtype=complex)
        fields[modes] *= modulator_field(psi)
        out = (fields[:, None] * matrix).sum(axis=0)  # not fields @ matrix: BLAS threads cost ms on a busy machine
        self._outputs[index] = (matrix, psi, out)
        return out

    def output_powers_W(self, index: int, volts: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """Noise-free power each detector of layer ``index`` receives, W, ``(N,)``: the output
        modes' power, or the activation's tapped share of it when the next layer is fed optically."""
        out = self.output_fields(index, volts)
        powers = out.real**2 + out.imag**2
        return self.settings.activation.alpha * powers if self._tapped[index] else powers

    def port_powers_W(self, meter: str, ports: int, volts: dict[str, NDArray[np.float64]], samples: int = 1,
                      state: object = None) -> NDArray[np.float64]:
        """``(ports, samples)`` readings of power meter ``meter``, W; unmapped ports read 0 W.

        ``state``: anything that changes whenever a voltage does (the heaters' change counters);
        while it is unchanged, the last output powers are reused without looking at ``volts``.
        """
        if state is None or state != self._state:
            self._state, self._powers = state, {}
        clean = np.zeros(ports)
        for index, modes, port_index in self._meters.get(meter, []):
            if index not in self._powers:
                self._powers[index] = self.output_powers_W(index, volts)
            clean[port_index] = self._powers[index][modes]
        if self.settings.noise == 0:
            return np.repeat(clean[:, None], samples, axis=1)
        noise = 1.0 + self.settings.noise * self.rng.standard_normal((ports, samples))
        return clean[:, None] * noise


    # -- whole sweeps (hardware-timed benches) ----------------------------------------------------
    def phase_rows(self, refs: "Gathered", volts: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
        """Phases ``(rows, n)`` of channels ``refs`` at voltages ``(rows, channels)`` per instrument, rad."""
        rows = next(iter(volts.values())).shape[0]
        out = np.empty((rows, refs.size))
        for name, (positions, channels) in refs.groups.items():
            out[:, positions] = self.laws[name].unwrapped_rad(volts[name][:, channels], channels)
        return out

    def sweep_powers_W(self, settings: dict[str, NDArray[np.float64]], setting: NDArray[np.intp],
                       ticks: dict[str, NDArray[np.float64]]) -> list[NDArray[np.float64]]:
        """Noise-free powers at every layer's detectors, ``(n, N)`` W per layer, for n clock ticks.

        Args:
            settings: instrument -> ``(u, channels)`` V, the u distinct settings of the instruments
                that drive mesh phases.
            setting: ``(n,)`` which of them each tick sees.
            ticks: instrument -> ``(n, channels)`` V, per tick, of the instruments that drive only
                input modulators.

        The u transfer matrices are computed once each (batched); the inputs of each setting's
        ticks go through its matrix in one product.
        """
        n = setting.shape[0]
        out: list[NDArray[np.float64]] = []
        fields: NDArray[np.complex128] | None = None
        for index, (optics, refs, (modes, mod_refs)) in enumerate(self._optics):
            # a mesh held while another is swept has one phase row for all settings: one matrix
            rows = self.phase_rows(refs, settings)
            held = bool((rows == rows[:1]).all())
            matrices = optics.matrices(rows[:1] if held else rows)
            which = np.zeros(rows.shape[0], dtype=np.intp) if held else np.arange(rows.shape[0])
            if self._optical[index]:
                assert fields is not None
                inputs = self.settings.activation(fields)
            else:
                per_tick = {name: ticks[name] if name in ticks else settings[name][setting] for name in mod_refs.groups}
                inputs = np.full((n, optics.modes), np.sqrt(self.settings.input_power_W / optics.modes), dtype=complex)
                if mod_refs.size:
                    inputs[:, modes] *= modulator_field(self.phase_rows(mod_refs, per_tick))
            fields = _through(inputs, matrices, which[setting])
            powers = fields.real**2 + fields.imag**2
            out.append(self.settings.activation.alpha * powers if self._tapped[index] else powers)
        return out


def _through(inputs: NDArray[np.complex128], matrices: NDArray[np.complex128],
             setting: NDArray[np.intp]) -> NDArray[np.complex128]:
    """``(n, N)`` outputs of ``(n, N)`` inputs, tick t through ``matrices[setting[t]]`` (``(u, N, N)``).

    The ticks are grouped by setting (a sweep's are in runs of equal length: one batched product);
    einsum, not matmul: BLAS threads cost more than they give on a busy machine."""
    order = np.argsort(setting, kind="stable")
    counts = np.bincount(setting, minlength=matrices.shape[0])
    out = np.empty_like(inputs)
    if counts.min() == counts.max():
        grouped = inputs[order].reshape(matrices.shape[0], counts[0], inputs.shape[1])
        out[order] = np.einsum("upn,unm->upm", grouped, matrices).reshape(inputs.shape)
        return out
    ends = np.cumsum(counts)
    for u, (start, end) in enumerate(zip(ends - counts, ends)):
        picked = order[start:end]
        out[picked] = np.einsum("pn,nm->pm", inputs[picked], matrices[u])
    return out


class Gathered:
    """Heater channels ``(instrument, channel)`` in a fixed order.

    Attributes:
        size: how many.
        groups: instrument -> (positions in the order ``(k,)``, its channels there ``(k,)``).
    """

    def __init__(self, refs: list[tuple[str, int]]) -> None:
        self.size = len(refs)
        self.groups = group_by_instrument(refs)


def _gather(refs: list) -> Gathered:
    return Gathered([(ref.instrument, ref.channel) for ref in refs])

"""What one mesh of the rig is made of, from ``instruments.yaml`` and the calibration file: its
phase channels (in parameter order), its input modulators and its detector ports, with the phase
law of every heater channel. Pure: nothing here opens an instrument."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.photonics.design import mesh_phase_names
from ffzero_lab.photonics.heaters import PhaseLaws
from ffzero_lab.rig.calibration_file import CalibrationFile
from ffzero_lab.rig.config import ChannelRef, PortRef, RigConfig


def group_by_instrument(refs: Sequence[tuple[str, int]]) -> dict[str, tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """``(instrument, number)`` pairs in some order -> instrument -> (the positions of its pairs in
    that order ``(k,)``, their numbers ``(k,)``): a gather or scatter per instrument instead of a
    loop over pairs."""
    out: dict[str, tuple[list[int], list[int]]] = {}
    for position, (instrument, number) in enumerate(refs):
        positions, numbers = out.setdefault(instrument, ([], []))
        positions.append(position)
        numbers.append(number)
    return {name: (np.array(p, dtype=np.intp), np.array(n, dtype=np.intp)) for name, (p, n) in out.items()}


@dataclass(frozen=True)
class Channels:
    """Heater channels ``(instrument, channel)`` in a fixed order, with their phase laws."""

    refs: tuple[ChannelRef, ...]
    laws: PhaseLaws
    roles: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.refs)

    @cached_property
    def groups(self) -> dict[str, tuple[NDArray[np.intp], NDArray[np.intp]]]:
        """Instrument -> (positions in this order ``(k,)``, its channels there ``(k,)``)."""
        return group_by_instrument([(ref.instrument, ref.channel) for ref in self.refs])

    def grouped(self, values: NDArray[np.float64]) -> dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]]:
        """``(n,)`` values -> instrument -> (its channels, their values)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(self.refs),):
            raise ValueError(f"{len(self.refs)} channels but values of shape {values.shape}")
        return {name: (channels, values[positions]) for name, (positions, channels) in self.groups.items()}

    def grouped_table(self, values: NDArray[np.float64]) -> dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]]:
        """``(rows, n)`` values -> instrument -> (its channels ``(k,)``, their values ``(rows, k)``)."""
        if values.ndim != 2 or values.shape[1] != len(self.refs):
            raise ValueError(f"{len(self.refs)} channels but a table of shape {values.shape}")
        return {name: (channels, values[:, positions]) for name, (positions, channels) in self.groups.items()}


@dataclass(frozen=True)
class LayerSpec:
    """One mesh of the rig.

    Attributes:
        index: its position in ``layers``.
        name: its name in the file (or ``layers[i]``).
        modes: N.
        phases: the mapped phases, in parameter order (thetas, phis, gammas), with
            ``names`` their phase names.
        modulators: the input modulator of every mode, in mode order (none when ``optical``).
        detectors: the power-meter port of every output mode, in mode order.
        optical: fed on the chip by the light of the mesh before (``input: optical``), not by
            input modulators of its own.
    """

    index: int
    name: str
    modes: int
    names: tuple[str, ...]
    phases: Channels
    modulators: Channels
    detectors: tuple[PortRef, ...]
    optical: bool = False

    @property
    def where(self) -> str:
        return f"layers[{self.index}]"


def channel_laws(refs: list[ChannelRef], roles: list[str], calibration: CalibrationFile, source: str) -> Channels:
    """The laws of ``refs`` from the calibration file.

    Raises:
        ConfigError: a channel has no law in the file (naming the channel and its role).
    """
    phi0, k = [], []
    for ref, role in zip(refs, roles, strict=True):
        law = calibration.law(ref.instrument, ref.channel)
        if law is None:
            raise ConfigError(f"no phase law for {ref.instrument!r} channel {ref.channel} ({role}); "
                              "run 'ffzero-lab calibrate'", source, "calibration")
        phi0.append(law.phi0_rad)
        k.append(law.k_rad_per_V2)
    return Channels(tuple(refs), PhaseLaws(phi0, k), tuple(roles))


def layer_specs(rig: RigConfig, calibration: CalibrationFile, source: str) -> list[LayerSpec]:
    """Every mesh of the rig, checked for what training needs.

    Raises:
        ConfigError: no layers; a layer without phases, or a mode without an input modulator
            or a detector; a channel without a law in the calibration file; two meshes whose
            widths do not chain.
    """
    if not rig.layers:
        raise ConfigError("the rig has no layers: map a mesh's phases, modulators and detectors", source, "layers")
    specs = []
    for i, layer in enumerate(rig.layers):
        where = f"layers[{i}]"
        names = [n for n in mesh_phase_names(layer.modes) if n in layer.phases]
        if not names:
            raise ConfigError("no phase is mapped to a heater channel", source, f"{where}.phases")
        optical = layer.input == "optical"
        needed = [("detectors", layer.detectors)] if optical else [("modulators", layer.modulators),
                                                                   ("detectors", layer.detectors)]
        for what, mapping in needed:
            missing = [m for m in range(layer.modes) if m not in mapping]
            if missing:
                raise ConfigError(f"mode {missing[0]} has no {what[:-1]}: every mode needs one "
                                  "(inputs are set by the modulators, taps read by the detectors)",
                                  source, f"{where}.{what}")
        phases = channel_laws([layer.phases[n] for n in names], [f"{where}.phases.{n}" for n in names],
                              calibration, source)
        modes = [] if optical else list(range(layer.modes))
        modulators = channel_laws([layer.modulators[m] for m in modes],
                                  [f"{where}.modulators[{m}]" for m in modes], calibration, source)
        detectors = tuple(layer.detectors[m] for m in range(layer.modes))
        specs.append(LayerSpec(i, layer.name or where, layer.modes, tuple(names), phases, modulators, detectors,
                               optical))
    for before, after in zip(specs, specs[1:]):
        if after.modes != before.modes:
            raise ConfigError(f"{after.where} has {after.modes} modes but {before.where} passes on {before.modes}",
                              source, f"{after.where}.modes")
    return specs

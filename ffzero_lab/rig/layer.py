"""One mesh of the rig as a :class:`~ffzero_lab.core.contract.PhysicalLayer`.

Parameters are the mapped mesh phases (theta, phi, gamma; periodic on [0, 2 pi)). A phase becomes
a heater voltage through its channel's calibrated law ``phi = phi0 + k V^2`` (the smallest
non-negative voltage); an input amplitude ``a`` in [0, 1] becomes the modulator phase
``2 asin(a)`` (a field of magnitude ``a``: :func:`~.optics.modulator_phase`) and then a voltage
the same way. Taps are the detector readings in watts, one per output mode.

Two ways a mesh passes its signal on (``input`` of the next mesh in ``instruments.yaml``):

* electrically (the next mesh has input modulators): the detected light as unit-power amplitudes,
  ``sqrt(taps / sum(taps))``, which the host sets on the next mesh's modulators (the training of
  mesh l uses the inputs measured through the frozen meshes before it, ``Network.layer_inputs``);
* optically (the next mesh is fed on the chip by this one's light, through the chip's own
  activation): nothing the host could hold stands for that light, so the signal passed on is this
  mesh's own input, and the next mesh, to be evaluated on it, sets the *source*'s modulators (the
  first mesh of the optical chain) to it while the meshes between hold their phases. Those are
  written with every phase setting of the evaluated mesh (their current phases, or per setting
  when the network is evaluated as a whole, ``held``), so the light is always the right one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.contract import (
    HeldParameters,
    ParameterBounds,
    ParameterRangeError,
    PhysicalLayer,
)
from ffzero_lab.photonics.design import modulator_phase
from ffzero_lab.rig.io import RigIO
from ffzero_lab.rig.plan import plan
from ffzero_lab.rig.spec import LayerSpec

#: How far an input may stray outside [0, 1] (rounding) before it is refused.
_INPUT_SLACK = 1e-9


class InputRangeError(ParameterRangeError):
    """An input the modulators cannot set (not real, or outside [0, 1]). Nothing was measured."""


Targets = dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]]


def merge_targets(parts: list[Targets]) -> Targets:
    """Heater writes of several meshes as one (instrument -> (channels ``(k,)``, voltages ``(..., k)``
    V)), so they share one settle."""
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, list[tuple[NDArray[np.intp], NDArray[np.float64]]]] = {}
    for part in parts:
        for name, pair in part.items():
            merged.setdefault(name, []).append(pair)
    return {name: pairs[0] if len(pairs) == 1 else
            (np.concatenate([c for c, _ in pairs]), np.concatenate([v for _, v in pairs], axis=-1))
            for name, pairs in merged.items()}


def detected_amplitudes(taps: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(..., ports)`` powers -> unit-power amplitudes ``sqrt(P / sum P)`` (zeros where dark)."""
    power = np.clip(taps, 0.0, None)
    total = power.sum(axis=-1, keepdims=True)
    return np.sqrt(np.divide(power, total, out=np.zeros_like(power), where=total > 0))


class HardwareMesh(HeldParameters, PhysicalLayer):
    """Mesh ``spec`` of the rig, driven through ``rig``.

    Args:
        spec: the mesh's channels, laws and ports.
        rig: the open instruments (shared by the rig's meshes).
        initial: ``(n,)`` initial phases, rad (written with the first evaluation).
        feeder: the mesh before, whose light feeds this one on the chip (``spec.optical``);
            None for a mesh with its own input modulators.

    Attributes:
        passes_light: the next mesh is fed optically by this one, so the signal passed on is
            this mesh's input (set when that mesh is built with this one as its feeder).
    """

    def __init__(self, spec: LayerSpec, rig: RigIO, initial: NDArray[np.floating],
                 feeder: "HardwareMesh | None" = None) -> None:
        if spec.optical != (feeder is not None):
            raise ValueError(f"{spec.where}: an optically fed mesh needs the mesh before it, and only it")
        self.spec, self.rig, self.feeder = spec, rig, feeder
        self.passes_light = False
        if feeder is not None:
            feeder.passes_light = True
        self.in_features = self.ports = self.out_features = spec.modes
        self._bounds = ParameterBounds.phases(len(spec.names), spec.names)
        self._theta = self._bounds.apply(initial)
        #: the meshes whose light reaches this one, from the one with modulators (the source) on
        self.upstream: list[HardwareMesh] = [] if feeder is None else feeder.upstream + [feeder]
        self.source: HardwareMesh = self.upstream[0] if self.upstream else self

    # -- parameters ---------------------------------------------------------------------------
    def set_parameters(self, values: NDArray[np.floating]) -> None:
        """Wrap the phases and write them (limits and power budget are checked by the drivers
        before anything is sent)."""
        theta = self._bounds.apply(values)
        self._write_phases(theta)
        self._theta = theta
        self.rig.holding[self.spec.index] = theta

    # -- writing ------------------------------------------------------------------------------
    def _write_phases(self, phases: NDArray[np.float64]) -> None:
        self.rig.write(self.phase_targets(phases), "phase", keep_holding=True)

    def phase_targets(self, phases: NDArray[np.float64]) -> Targets:
        """Heater writes for this mesh's phases ``(n,)`` (rad, wrapped)."""
        return self.spec.phases.grouped(self.spec.phases.laws.voltages_V(phases))

    def input_voltages_V(self, inputs: NDArray[np.generic]) -> NDArray[np.float64]:
        """Modulator voltages ``(..., modes)`` for amplitudes ``(..., modes)`` in [0, 1].

        Raises:
            InputRangeError: an input is complex, not finite, or outside [0, 1].
        """
        x = np.asarray(inputs)
        if np.iscomplexobj(x):
            raise InputRangeError(f"{self.spec.where}: the input modulators set real amplitudes; got complex inputs")
        bad = ~np.isfinite(x) | (x < -_INPUT_SLACK) | (x > 1 + _INPUT_SLACK)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputRangeError(f"{self.spec.where}: input {x[where]} (mode {where[-1]}) is outside [0, 1], "
                                  "which the input modulators cannot set")
        return self.spec.modulators.laws.voltages_V(modulator_phase(x))

    # -- PhysicalLayer ------------------------------------------------------------------------
    def propagate(
        self, inputs: NDArray[np.generic], settings: NDArray[np.floating],
        held: "list[tuple[HardwareMesh, NDArray[np.floating]]] | None" = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Each setting written once (one settle), the inputs swept under it (see :mod:`.plan`): on a
        rig whose modulators and detectors are hardware-timed, the whole call as one sweep.

        Args:
            inputs: ``(B, modes)`` or ``(S, B, modes)`` amplitudes in [0, 1] for the modulators of
                :attr:`source` (this mesh's own, unless it is fed optically).
            settings: ``(S, n)`` phases, rad.
            held: for an optically fed mesh, per mesh of :attr:`upstream`, its ``(S, n_m)`` phases
                to write with each setting (a network evaluated as a whole); None: they hold their
                current phases.

        Returns:
            ``(S, B, modes)`` the signal passed on (detected amplitudes, or ``inputs`` when the
            next mesh is fed optically) and ``(S, B, modes)`` the detectors' readings, W.
        """
        settings = self._bounds.apply(np.atleast_2d(settings))
        volts_in = self.source.input_voltages_V(inputs)
        s_count = settings.shape[0]
        per_setting = volts_in.ndim == 3
        if per_setting and volts_in.shape[0] != s_count:
            raise ValueError(f"{volts_in.shape[0]} input batches for {s_count} settings")
        if held is None:
            held = [(mesh, mesh.get_parameters()[None].repeat(s_count, axis=0)) for mesh in self.upstream]
        elif [mesh for mesh, _ in held] != self.upstream:
            raise ValueError(f"{self.spec.where}: held phases must name the meshes whose light reaches it")
        held = [(mesh, mesh._bounds.apply(np.atleast_2d(phases))) for mesh, phases in held]
        for mesh, phases in held:
            if phases.shape != (s_count, mesh.n_params):
                raise ValueError(f"{self.spec.where}: {mesh.spec.where}'s held phases have shape {phases.shape}, "
                                 f"not ({s_count}, {mesh.n_params})")
        modulators = self.source.spec.modulators
        batch = volts_in.shape[-2]
        geometry = self.rig.geometry(s_count, batch, modulators.groups, self.spec.detectors)
        if geometry is not None:  # hardware-timed: the whole call as one sweep
            # a mesh held at the phases its heaters hold already is left out of the sweep
            meshes = [(mesh, phases) for mesh, phases in held if not mesh._holds(phases)] + [(self, settings)]
            heaters = merge_targets([mesh.spec.phases.grouped_table(mesh.spec.phases.laws.voltages_V(phases))
                                     for mesh, phases in meshes])
            played = modulators.grouped_table(geometry.input_table(volts_in))
            taps = self.rig.sweep(geometry, heaters, played, self.spec.detectors)
            for mesh, phases in meshes:
                self.rig.holding[mesh.spec.index] = phases[-1]
            return self._signal(inputs, taps)
        taps = np.empty((s_count, batch, self.ports))
        current = -1
        try:
            for s, b in plan(s_count, batch):
                if s != current:
                    self.rig.write(merge_targets([mesh.phase_targets(phases[s]) for mesh, phases in held]
                                                 + [self.phase_targets(settings[s])]), "phase", keep_holding=True)
                    current = s
                self.rig.write(modulators.grouped(volts_in[s, b] if per_setting else volts_in[b]), "input",
                               keep_holding=True)
                taps[s, b] = self.rig.read_ports(self.spec.detectors)
        except BaseException:
            self.rig.holding.clear()
            raise
        for mesh, phases in held + [(self, settings)]:
            self.rig.holding[mesh.spec.index] = phases[-1]
        return self._signal(inputs, taps)

    def _holds(self, phases: NDArray[np.float64]) -> bool:
        """Whether every row of ``phases`` ``(S, n)`` is what this mesh's heaters hold now."""
        now = self.rig.holding.get(self.spec.index)
        return now is not None and bool((phases == now).all())

    def _signal(self, inputs: NDArray[np.generic], taps: NDArray[np.float64]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The signal passed on for readings ``taps`` ``(S, B, modes)`` of ``inputs``, and the taps."""
        if self.passes_light:
            passed = np.asarray(inputs, dtype=np.float64)
            return np.broadcast_to(passed, (taps.shape[0], *passed.shape[-2:])), taps
        return detected_amplitudes(taps), taps

    def safe_state(self) -> None:
        """Every heater of the rig (not only this mesh's) to its safe value."""
        self.rig.safe_state()

    def state(self) -> dict[str, NDArray[np.generic]]:
        """The phase laws the run used: mesh phases and input modulators."""
        laws = self.spec.phases.laws, self.spec.modulators.laws
        return {"phase_phi0_rad": laws[0].phi0_rad, "phase_k_rad_per_V2": laws[0].k_rad_per_V2,
                "modulator_phi0_rad": laws[1].phi0_rad, "modulator_k_rad_per_V2": laws[1].k_rad_per_V2}

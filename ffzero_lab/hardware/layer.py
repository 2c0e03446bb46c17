"""One mesh of the rig as a :class:`~ffzero_lab.contract.PhysicalLayer`.

Parameters are the mapped mesh phases (theta, phi, gamma; periodic on [0, 2 pi)). A phase becomes
a heater voltage through its channel's calibrated law ``phi = phi0 + k V^2`` (the smallest
non-negative voltage); an input amplitude ``a`` in [0, 1] becomes the modulator phase
``2 asin(a)`` (a field of magnitude ``a``: :func:`~.optics.modulator_phase`) and then a voltage
the same way. Taps are the detector readings in watts, one per output mode.

The signal passed on to the next mesh is the detected light as unit-power amplitudes,
``sqrt(taps / sum(taps))``: on this rig every mesh has its own input modulators and detectors, so
the next mesh's input is set electrically from what this one's detectors read (the training of
mesh l uses the inputs measured through the frozen meshes before it, see ``Network.layer_inputs``).
An optically cascaded chip, whose mesh l sees the light of mesh l-1 directly, is not modelled.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..contract import HeldParameters, ParameterBounds, ParameterRangeError, PhysicalLayer
from .optics import modulator_phase
from .plan import plan
from .rig import RigIO
from .spec import LayerSpec

#: How far an input may stray outside [0, 1] (rounding) before it is refused.
_INPUT_SLACK = 1e-9


class InputRangeError(ParameterRangeError):
    """An input the modulators cannot set (not real, or outside [0, 1]). Nothing was measured."""


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
    """

    def __init__(self, spec: LayerSpec, rig: RigIO, initial: NDArray[np.floating]) -> None:
        self.spec, self.rig = spec, rig
        self.in_features = self.ports = self.out_features = spec.modes
        self._bounds = ParameterBounds.phases(len(spec.names), spec.names)
        self._theta = self._bounds.apply(initial)

    # -- parameters ---------------------------------------------------------------------------
    def set_parameters(self, values: NDArray[np.floating]) -> None:
        """Wrap the phases and write them (limits and power budget are checked by the drivers
        before anything is sent)."""
        theta = self._bounds.apply(values)
        self._write_phases(theta)
        self._theta = theta

    # -- writing ------------------------------------------------------------------------------
    def _write_phases(self, phases: NDArray[np.float64]) -> None:
        self.rig.write(self.spec.phases.grouped(self.spec.phases.laws.voltages_V(phases)), "phase")

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
        self, inputs: NDArray[np.generic], settings: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Each setting written once (one settle), the inputs swept under it (see :mod:`.plan`)."""
        settings = self._bounds.apply(np.atleast_2d(settings))
        volts_in = self.input_voltages_V(inputs)
        s_count = settings.shape[0]
        per_setting = volts_in.ndim == 3
        if per_setting and volts_in.shape[0] != s_count:
            raise ValueError(f"{volts_in.shape[0]} input batches for {s_count} settings")
        batch = volts_in.shape[-2]
        taps = np.empty((s_count, batch, self.ports))
        current = -1
        for s, b in plan(s_count, batch):
            if s != current:
                self._write_phases(settings[s])
                current = s
            self.rig.write(self.spec.modulators.grouped(volts_in[s, b] if per_setting else volts_in[b]), "input")
            taps[s, b] = self.rig.read_ports(self.spec.detectors)
        return detected_amplitudes(taps), taps

    def safe_state(self) -> None:
        """Every heater of the rig (not only this mesh's) to its safe value."""
        self.rig.safe_state()

    def state(self) -> dict[str, NDArray[np.generic]]:
        """The phase laws the run used: mesh phases and input modulators."""
        laws = self.spec.phases.laws, self.spec.modulators.laws
        return {"phase_phi0_rad": laws[0].phi0_rad, "phase_k_rad_per_V2": laws[0].k_rad_per_V2,
                "modulator_phi0_rad": laws[1].phi0_rad, "modulator_k_rad_per_V2": laws[1].k_rad_per_V2}

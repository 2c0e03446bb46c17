"""The nominal optical design of a rig's chip: what a phase name in ``instruments.yaml`` means.

A layer is a rectangular (Clements) mesh of N modes and N columns. Column ``c`` (0..N-1) holds
MZIs on the mode pairs ``(c % 2 + 2 s, c % 2 + 2 s + 1)``; MZI ``(c, s)`` has the external phase
``phi[c,s]`` on its upper input, then a beam splitter, the internal phase ``theta[c,s]`` on its
upper arm, a second beam splitter (theta = pi: bar, theta = 0: cross); ``gamma[m]`` is a phase on
input mode m. The transfer is :mod:`.clements`'s (``external='input'``, lossless, ideal
splitters), in its one convention: fields are row vectors, ``outputs = inputs @ U``.

An input modulator is an MZI with one heater: the field it passes is ``(e^{i psi} - 1) / 2``,
of magnitude ``|sin(psi / 2)|`` (2 pi periodic in its phase psi) and with the phase ``psi / 2 + pi / 2``
that a one-armed modulator imprints.

Calibration (:mod:`ffzero_lab.calibration.fit`) fits this design to measurements, and the
emulated rig plays it; the training itself never uses it (FFzero is model-free).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ffzero_lab.photonics.clements import (
    MeshGeometry,
    grid_permutation,
    mzi_blocks,
    rectangular_mask,
    transfer_matrices,
)

_NAME = re.compile(r"^(theta|phi)\[(\d+),(\d+)\]$|^gamma\[(\d+)\]$")


def mesh_phase_names(modes: int) -> list[str]:
    """Every phase of an N-mode rectangular mesh in parameter order: thetas, phis (by column,
    then slot), then gammas (the simulated mesh's order)."""
    mzis = [f"[{c},{s}]" for c in range(modes) for s in range(len(range(c % 2, modes - 1, 2)))]
    return [f"theta{m}" for m in mzis] + [f"phi{m}" for m in mzis] + [f"gamma[{m}]" for m in range(modes)]


def modulator_field(psi: ArrayLike) -> NDArray[np.complex128]:
    """Field passed by an input modulator at phase ``psi`` (rad), per unit input field."""
    return (np.exp(1j * np.asarray(psi, dtype=np.float64)) - 1.0) / 2.0


def modulator_phase(amplitude: ArrayLike) -> NDArray[np.float64]:
    """The modulator phase in ``[0, pi]`` that passes field magnitude ``amplitude`` in ``[0, 1]``."""
    return 2.0 * np.arcsin(np.clip(np.asarray(amplitude, dtype=np.float64), 0.0, 1.0))


class MeshOptics:
    """Transfer matrices of one rectangular mesh of the design for batches of phase settings.

    Args:
        modes: N.
        names: the phases that are set, in the order of a setting's columns; every other phase
            of the mesh is held at ``fixed``.
        fixed: the phase of the phases not named, rad.
    """

    def __init__(self, modes: int, names: Sequence[str], fixed: float = 0.0) -> None:
        self.modes = modes
        self.names = list(names)
        known = {name: i for i, name in enumerate(mesh_phase_names(modes))}
        unknown = [n for n in self.names if n not in known]
        if unknown:
            raise ValueError(f"a {modes}-mode mesh has no phase {unknown[0]!r}")
        self.fixed = fixed
        self.geometry = MeshGeometry(modes, modes, grid_permutation(modes, modes), rectangular_mask(modes, modes),
                                     np.zeros((modes, modes // 2)), external="input")
        self._where = self.geometry.mask > 0  # (L, N//2): the MZIs, in the order of mesh_phase_names
        self._columns = np.array([known[n] for n in self.names], dtype=np.intp)

    def _full(
        self, phases: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """theta, phi ``(S, L, N//2)`` and gamma ``(S, N)`` for named phases ``(S, n)``."""
        s, m, n = phases.shape[0], int(self._where.sum()), self.modes
        every = np.full((s, 2 * m + n), self.fixed)
        every[:, self._columns] = phases
        theta = np.full((s,) + self._where.shape, np.pi)
        phi = np.full((s,) + self._where.shape, np.pi)
        theta[:, self._where], phi[:, self._where] = every[:, :m], every[:, m : 2 * m]
        return theta, phi, every[:, 2 * m :]

    def matrices(self, phases: ArrayLike) -> NDArray[np.complex128]:
        """``(S, N, N)`` transfer matrices for settings ``(S, n)`` (rad); ``outputs = inputs @ U``."""
        phases = np.atleast_2d(np.asarray(phases, dtype=np.float64))
        theta, phi, gamma = self._full(phases)
        return transfer_matrices(mzi_blocks(theta, phi, self.geometry), gamma, self.geometry)

    def port_powers(self, phases: ArrayLike, fields: ArrayLike) -> NDArray[np.float64]:
        """``(S, J, N)`` output powers for settings ``(S, n)`` and input fields ``(J, N)`` or ``(S, J, N)``."""
        out = np.asarray(fields, dtype=np.complex128) @ self.matrices(phases)
        return out.real**2 + out.imag**2


def phase_kind(name: str) -> str:
    """``theta``, ``phi`` or ``gamma`` for a phase name."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not a phase name: {name!r}")
    return match.group(1) or "gamma"

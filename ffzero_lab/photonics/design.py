"""The nominal optical design of a rig's chip: what a phase name in ``instruments.yaml`` means.

A layer is a rectangular (Clements) mesh of N modes. Column ``c`` (0..N-1) holds MZIs on the mode
pairs ``(c % 2 + 2 s, c % 2 + 2 s + 1)``; MZI ``(c, s)`` is a beam splitter, the internal phase
``theta[c,s]`` on its upper arm, a second beam splitter, after the external phase ``phi[c,s]`` on
its upper input: ``T = B diag(e^{i theta}, 1) B diag(e^{i phi}, 1)``, ``B = [[1, i], [i, 1]] / sqrt 2``
(theta = pi: bar, theta = 0: cross). ``gamma[m]`` is a phase on input mode m. Fields are column
vectors: ``outputs = U @ inputs``.

An input modulator is an MZI with one heater: the field it passes is ``(e^{i psi} - 1) / 2``,
of magnitude ``|sin(psi / 2)|`` (2 pi periodic in its phase psi) and with the phase ``psi / 2 + pi / 2``
that a one-armed modulator imprints.

Calibration (:mod:`.fit`) fits this design to measurements, and the emulated rig
(``drivers/emulated/chip.py``) plays it; the training itself never uses it (FFzero is model-free).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
    """Transfer matrices of one rectangular mesh for batches of phase settings.

    Args:
        modes: N.
        names: the phases that are set, in the order of a setting's columns; every other phase
            of the mesh is held at ``fixed``.
        fixed: the phase of the phases not named, rad.
    """

    def __init__(self, modes: int, names: Sequence[str], fixed: float = 0.0) -> None:
        self.modes = modes
        self.names = list(names)
        index = {name: i for i, name in enumerate(self.names)}
        unknown = [n for n in self.names if n not in set(mesh_phase_names(modes))]
        if unknown:
            raise ValueError(f"a {modes}-mode mesh has no phase {unknown[0]!r}")
        self.fixed = fixed
        # per column: (top modes, theta column or -1, phi column or -1)
        self._columns: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]] = []
        for c in range(modes):
            tops = np.arange(c % 2, modes - 1, 2)
            theta = np.array([index.get(f"theta[{c},{s}]", -1) for s in range(tops.size)], dtype=np.intp)
            phi = np.array([index.get(f"phi[{c},{s}]", -1) for s in range(tops.size)], dtype=np.intp)
            self._columns.append((tops, theta, phi))
        self._gamma = np.array([index.get(f"gamma[{m}]", -1) for m in range(modes)], dtype=np.intp)

    def _pick(self, phases: NDArray[np.float64], columns: NDArray[np.intp]) -> NDArray[np.float64]:
        """``(S, k)`` phases of the given setting columns (-1: the fixed phase)."""
        out = np.full((phases.shape[0], columns.size), self.fixed)
        named = columns >= 0
        out[:, named] = phases[:, columns[named]]
        return out

    def matrices(self, phases: ArrayLike) -> NDArray[np.complex128]:
        """``(S, N, N)`` transfer matrices for settings ``(S, n)`` (rad); ``outputs = U @ inputs``."""
        phases = np.atleast_2d(np.asarray(phases, dtype=np.float64))
        s, n = phases.shape[0], self.modes
        u = np.zeros((s, n, n), dtype=np.complex128)
        u[:, np.arange(n), np.arange(n)] = np.exp(1j * self._pick(phases, self._gamma))
        for tops, theta_cols, phi_cols in self._columns:
            if tops.size == 0:
                continue
            et = np.exp(1j * self._pick(phases, theta_cols))  # (S, k)
            ep = np.exp(1j * self._pick(phases, phi_cols))
            bar, cross, low = 0.5 * (et - 1.0), 0.5j * (et + 1.0), 0.5 * (1.0 - et)
            top_rows, low_rows = u[:, tops, :], u[:, tops + 1, :]
            new_top = (bar * ep)[..., None] * top_rows + cross[..., None] * low_rows
            new_low = (cross * ep)[..., None] * top_rows + low[..., None] * low_rows
            u[:, tops, :], u[:, tops + 1, :] = new_top, new_low
        return u

    def port_powers(self, phases: ArrayLike, fields: ArrayLike) -> NDArray[np.float64]:
        """``(S, N, J)`` output powers for settings ``(S, n)`` and input fields ``(N, J)`` or ``(S, N, J)``."""
        out = self.matrices(phases) @ np.asarray(fields, dtype=np.complex128)
        return out.real**2 + out.imag**2


def phase_kind(name: str) -> str:
    """``theta``, ``phi`` or ``gamma`` for a phase name."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"not a phase name: {name!r}")
    return match.group(1) or "gamma"

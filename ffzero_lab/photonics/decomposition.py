"""Clements decomposition: the design's phases (:mod:`.design`) of a given unitary.

Used to start a rig's meshes from a Haar-random matrix and to seed the calibration fit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.photonics.clements import MeshGeometry, grid_permutation, mzi_blocks

TWO_PI = 2 * np.pi


_ONE = MeshGeometry(2, 1, grid_permutation(2, 1), np.ones((1, 1)), np.zeros((1, 1)), external="input")


def _mzi(theta: float, phi: float) -> NDArray[np.complex128]:
    """The design's 2x2 MZI acting on a column pair, ``[y0, y1] = M @ [x0, x1]`` (the transpose of
    :func:`.clements.mzi_blocks`' row block)."""
    return mzi_blocks(np.array([[[theta]]]), np.array([[[phi]]]), _ONE)[0, 0, 0].T


def decompose(u: NDArray[np.complexfloating], flips: int = 0) -> dict[str, float]:
    """The design's phases of a unitary ``u`` (row convention, ``outputs = inputs @ u``):
    ``U_design(phases) @ D = u`` for some diagonal D of output phases.

    Worked on the column form ``u.T`` (``outputs = u.T @ inputs``):

    Clements et al.'s (2016) nulling: MZIs from the right null the lower-left triangle's
    anti-diagonals in turn, MZIs from the left the others, until a diagonal is left; the diagonal
    is then pushed out through the left ones (``T^-1 D = D' T'``) to the outputs, where power
    meters cannot see it. Gammas are 0 (they are among the phases power meters cannot tell apart).

    Each nulling has two solutions, ``(theta, phi)`` and ``(2 pi - theta, phi + pi)``; bit i of
    ``flips`` takes the second at the i-th nulling. All 2^(N(N-1)/2) decompositions give the same
    ``u``; only sweeps tell them apart.

    Returns:
        Phase name -> rad, for every theta and phi of the N-mode rectangular mesh.
    """
    n = u.shape[0]
    u = np.array(np.transpose(u), dtype=np.complex128)
    right, left = [], []
    step = 0

    def branch(theta: float, phi: float) -> tuple[float, float]:
        nonlocal step
        flipped = (flips >> step) & 1
        step += 1
        return (TWO_PI - theta, phi + np.pi) if flipped else (theta, phi)

    for i in range(1, n):
        if i % 2 == 1:
            for j in range(i):
                r, m = n - 1 - j, i - 1 - j
                a, b = u[r, m], u[r, m + 1]
                theta, phi = branch(2 * np.arctan2(abs(b), abs(a)), float(np.angle(-a * np.conj(b))))
                u[:, [m, m + 1]] = u[:, [m, m + 1]] @ _mzi(theta, phi).conj().T
                right.append((m, theta, phi))
        else:
            for j in range(1, i + 1):
                m, col = n + j - i - 2, j - 1
                a, b = u[m, col], u[m + 1, col]
                theta, phi = branch(2 * np.arctan2(abs(a), abs(b)), float(np.angle(b * np.conj(a))))
                u[[m, m + 1], :] = _mzi(theta, phi) @ u[[m, m + 1], :]
                left.append((m, theta, phi))
    d = np.diag(u).copy()
    pushed = []
    for m, theta, phi in reversed(left):  # T(theta, phi)^-1 diag(d1, d2) = D' T(theta, arg(d1 / d2))
        d1, d2 = d[m], d[m + 1]
        outer = -np.exp(-1j * theta) * d2
        d[m], d[m + 1] = outer * np.exp(-1j * phi), outer
        pushed.append((m, theta, float(np.angle(d1 / d2))))
    front = np.zeros(n, dtype=int)
    phases: dict[str, float] = {}
    for m, theta, phi in right + pushed:  # input to output: each MZI in the first column it fits
        c = int(max(front[m], front[m + 1]))
        c += (c - m) % 2
        slot = (m - c % 2) // 2
        phases[f"theta[{c},{slot}]"], phases[f"phi[{c},{slot}]"] = (
            float(np.mod(theta, TWO_PI)),
            float(np.mod(phi, TWO_PI)),
        )
        front[m] = front[m + 1] = c + 1
    return phases

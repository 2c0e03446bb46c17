"""Batched transfer computation for rectangular (Clements) MZI meshes.

Pure functions that reproduce neurophox's ``RMNumpy`` numpy backend (``hadamard=False``,
``basis='sm'`` or ``'bloch'``) for a whole batch of phase settings at once, so that the 2K
perturbed settings of a directional-derivative step cost one vectorised pass instead of 2K
mesh rebuilds (50-60 ms each for 64 modes, HARDWARE.md).

Conventions (neurophox's): a field is a row vector; a mesh of N modes and L layers maps
inputs ``x`` of shape ``(M, N)`` to ``x @ U``. Phases are in radians:

* ``theta`` ``(L, N//2)`` internal MZI phases, ``phi`` ``(L, N//2)`` external MZI phases,
* ``gamma`` ``(N,)`` phases applied at the mesh input,
* ``mask`` ``(L, N//2)`` 1 where an MZI exists; masked slots are held at the bar state
  (theta = phi = pi), as neurophox does,
* ``bs_error`` ``(L, N//2)`` split-ratio error per MZI (both beam splitters of an MZI share it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class MeshGeometry:
    """Fixed structure of a rectangular mesh: mode permutations, MZI mask, fabrication errors.

    Attributes:
        units: number of modes N.
        num_layers: number of MZI columns L.
        perm_idx: ``(L + 1, N)`` int permutations (neurophox ``grid_permutation``).
        mask: ``(L, N//2)`` float, 1 for a tunable MZI, 0 for an unused slot.
        bs_error: ``(L, N//2)`` beam-splitter split-ratio error per MZI (dimensionless).
        basis: ``'sm'`` (theta on the upper arm only) or ``'bloch'`` (+-theta/2).
    """

    units: int
    num_layers: int
    perm_idx: NDArray[np.int64]
    mask: NDArray[np.float64]
    bs_error: NDArray[np.float64]
    basis: str = "sm"

    @property
    def n_mzis(self) -> int:
        """Number of tunable MZIs, N(N-1)/2 for a full rectangular mesh."""
        return int(self.mask.sum())

    @property
    def n_params(self) -> int:
        """Number of phase shifters: two per MZI plus N input phases (N^2 for a full mesh)."""
        return 2 * self.n_mzis + self.units


def grid_permutation(units: int, num_layers: int) -> NDArray[np.int64]:
    """Mode permutations between the columns of a rectangular mesh, shape ``(L + 1, N)``.

    Identical to neurophox's ``helpers.grid_permutation``: column 0 couples (0,1),(2,3)...;
    odd columns are shifted by one mode so that they couple (1,2),(3,4)...
    """
    ordered = np.arange(units)
    left = np.roll(ordered, -1)
    right = np.roll(ordered, 1)
    perms = np.empty((num_layers, units), dtype=np.int64)
    perms[::2] = left
    perms[1::2] = right
    if num_layers % 2:
        return np.vstack((ordered, perms[:-1], ordered))
    return np.vstack((ordered, perms))


def rectangular_mask(units: int, num_layers: int) -> NDArray[np.float64]:
    """``(L, N//2)`` mask of a rectangular mesh: odd columns hold (N-1)//2 MZIs."""
    mask = np.zeros((num_layers, units // 2))
    mask[0::2, : units // 2] = 1.0
    mask[1::2, : (units - 1) // 2] = 1.0
    return mask


def mzi_blocks(
    theta: NDArray[np.floating],
    phi: NDArray[np.floating],
    geometry: MeshGeometry,
    dtype: type = np.complex128,
) -> NDArray[np.complexfloating]:
    """2x2 transfer blocks of every MZI for a batch of settings.

    Args:
        theta: internal phases, radians, shape ``(S, L, N//2)``.
        phi: external phases, radians, shape ``(S, L, N//2)``.
        geometry: the mesh's fixed structure.
        dtype: complex dtype of the result.

    Returns:
        ``(S, L, N//2, 2, 2)``; block ``T`` acts on a row pair as ``[x0, x1] @ T``.
    """
    mask = geometry.mask
    theta = theta * mask + (1.0 - mask) * np.pi
    phi = phi * mask + (1.0 - mask) * np.pi
    if geometry.basis == "sm":
        iu, il = theta, np.zeros_like(theta)
    elif geometry.basis == "bloch":
        iu, il = theta / 2, -theta / 2
    else:
        raise ValueError(f"basis must be 'sm' or 'bloch', got {geometry.basis!r}")
    e = geometry.bs_error
    sp, sn = np.sqrt(1.0 + e), np.sqrt(1.0 - e)
    epp, epn, enp, enn = sp * sp, sp * sn, sn * sp, sn * sn
    a, b = np.exp(1j * iu), np.exp(1j * il)
    ephi = np.exp(1j * phi)
    blocks = np.empty(theta.shape + (2, 2), dtype=dtype)
    blocks[..., 0, 0] = 0.5 * (epp * a - enn * b) * ephi
    blocks[..., 0, 1] = 0.5j * (epn * a + enp * b)
    blocks[..., 1, 0] = 0.5j * (enp * a + epn * b) * ephi
    blocks[..., 1, 1] = -0.5 * (enn * a - epp * b)
    return blocks


def propagate(
    fields: NDArray[np.complexfloating],
    blocks: NDArray[np.complexfloating],
    gamma: NDArray[np.floating],
    geometry: MeshGeometry,
) -> NDArray[np.complexfloating]:
    """Push fields through a batch of meshes.

    Args:
        fields: input fields, shape ``(M, N)`` (shared by all settings) or ``(S, M, N)``.
        blocks: MZI blocks from :func:`mzi_blocks`, shape ``(S, L, N//2, 2, 2)``.
        gamma: input phases, radians, shape ``(S, N)``.
        geometry: the mesh's fixed structure.

    Returns:
        Output fields ``(S, M, N)``: ``fields @ U_s`` for each setting s.
    """
    n, half = geometry.units, geometry.units // 2
    x = fields * np.exp(1j * gamma)[:, None, :].astype(blocks.dtype)
    perm = geometry.perm_idx
    x = x[..., perm[0]]
    for layer in range(geometry.num_layers):
        pairs = x[..., : 2 * half].reshape(x.shape[:-1] + (half, 2))  # (S, M, N//2, 2)
        p0, p1 = pairs[..., 0], pairs[..., 1]
        t = blocks[:, layer][:, None]  # (S, 1, N//2, 2, 2)
        out = np.empty_like(x)
        out[..., 0 : 2 * half : 2] = p0 * t[..., 0, 0] + p1 * t[..., 1, 0]
        out[..., 1 : 2 * half : 2] = p0 * t[..., 0, 1] + p1 * t[..., 1, 1]
        if n % 2:
            out[..., -1] = x[..., -1]
        x = out[..., perm[layer + 1]]
    return x


def transfer_matrices(
    blocks: NDArray[np.complexfloating], gamma: NDArray[np.floating], geometry: MeshGeometry
) -> NDArray[np.complexfloating]:
    """Transfer matrices ``U_s`` ``(S, N, N)`` of a batch of settings (row convention: ``x @ U``)."""
    eye = np.eye(geometry.units, dtype=blocks.dtype)
    return propagate(eye, blocks, gamma, geometry)

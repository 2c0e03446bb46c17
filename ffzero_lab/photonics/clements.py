"""The one transfer computation of rectangular (Clements) MZI meshes, for batches of settings.

Used by the simulated chip, the rig's design model (:mod:`.design`, which the emulated chip and
the calibration fit use) and, through :func:`transfer_matrices`, everything else that needs a
mesh's matrix. Pure functions that reproduce neurophox's ``RMNumpy`` numpy backend
(``hadamard=False``, ``basis='sm'`` or ``'bloch'``) for a whole batch of phase settings at once,
so that the 2K perturbed settings of a directional-derivative step cost one vectorised pass
instead of 2K mesh rebuilds (tens of ms each at 64 modes).

The one convention: a field is a row vector; a mesh of N modes and L layers maps inputs ``x`` of
shape ``(M, N)`` to ``x @ U``. Phases are in radians:

* ``theta`` ``(L, N//2)`` internal MZI phases, ``phi`` ``(L, N//2)`` external MZI phases,
* ``gamma`` ``(N,)`` phases applied at the mesh input,
* ``mask`` ``(L, N//2)`` 1 where an MZI exists; masked slots are held at the bar state
  (theta = phi = pi), as neurophox does,
* ``bs_error`` ``(L, N//2)`` split-ratio error per MZI (both beam splitters of an MZI share it).

An MZI is beam splitter, internal phase ``theta``, beam splitter; its external phase ``phi`` sits
on the upper arm either after it (``external='output'``, neurophox's layout, the simulated chip)
or before it (``external='input'``, the rig's design of :mod:`.design`). With the splitters'
amplitudes ``e++ = (1+e)/2, e+- = e-+ = sqrt(1-e^2)/2, e-- = (1-e)/2`` (times the MZI's
transmission) and ``a = e^{i theta}`` (basis ``sm``), the block acting as ``[x0, x1] @ T`` is::

    T = [[(e++ a - e--) p0,  i (e+- a + e-+) p1],
         [i (e-+ a + e+-) q0,  e++ - e-- a    ]]

with ``p0 = q0 = e^{i phi}, p1 = 1`` for ``output`` and ``p0 = p1 = e^{i phi}, q0 = 1`` for
``input``; in basis ``bloch`` the internal phase is split ``+-theta/2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.photonics.mzi import mzi_transfer


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
        transmission: ``(L, N//2)`` amplitude transmission of each MZI (insertion loss), or
            None for a lossless mesh.
        external: where each MZI's external phase ``phi`` sits on its upper arm: ``output``
            (after the MZI, neurophox) or ``input`` (before it, the rig's design).
    """

    units: int
    num_layers: int
    perm_idx: NDArray[np.int64]
    mask: NDArray[np.float64]
    bs_error: NDArray[np.float64]
    basis: str = "sm"
    transmission: NDArray[np.float64] | None = None
    external: str = "output"

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


def _expi(x: NDArray[np.floating], dtype: type = np.complex128) -> NDArray[np.complexfloating]:
    """``exp(1j x)`` for real x, via cos and sin (cheaper than a complex exp)."""
    out = np.empty(x.shape, dtype=dtype)
    np.cos(x, out=out.real, casting="same_kind")
    np.sin(x, out=out.imag, casting="same_kind")
    return out


def splitter_amplitudes(geometry: MeshGeometry) -> NDArray[np.float64]:
    """The beam splitters' amplitudes of every MZI, times its transmission, ``(4, L, N//2)``.

    ``e++ = (1+e)/2, e+- = e-+ = sqrt(1-e^2)/2, e-- = (1-e)/2`` for split-ratio error ``e``
    (both splitters of an MZI share it), each times the MZI's amplitude transmission.
    """
    e = geometry.bs_error
    sp, sn = np.sqrt(1.0 + e), np.sqrt(1.0 - e)
    scale = 0.5 if geometry.transmission is None else 0.5 * geometry.transmission
    return np.stack([scale * sp * sp, scale * sp * sn, scale * sn * sp, scale * sn * sn])


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
        dtype: complex dtype of the result (the arithmetic is done in its precision).

    Returns:
        ``(S, L, N//2, 2, 2)``; block ``T`` acts on a row pair as ``[x0, x1] @ T``.
    """
    mask = geometry.mask
    real = np.float32 if np.dtype(dtype) == np.complex64 else np.float64
    theta = np.where(mask > 0, theta, np.pi).astype(real, copy=False)
    phi = np.where(mask > 0, phi, np.pi).astype(real, copy=False)
    epp, epn, enp, enn = splitter_amplitudes(geometry).astype(real)
    if geometry.basis == "sm":  # internal phases theta on the upper arm, 0 on the lower
        a, b = _expi(theta, dtype), real(1.0)
    elif geometry.basis == "bloch":  # +theta/2 and -theta/2: b = conj(a)
        a = _expi(theta / 2, dtype)
        b = a.conj()
    else:
        raise ValueError(f"basis must be 'sm' or 'bloch', got {geometry.basis!r}")
    if geometry.external not in ("output", "input"):
        raise ValueError(f"external must be 'output' or 'input', got {geometry.external!r}")
    blocks = np.empty(theta.shape + (2, 2), dtype=dtype)
    t = mzi_transfer(a, b, _expi(phi, dtype), epp, epn, enp, enn, geometry.external == "input")
    for (i, j), value in zip(((0, 0), (0, 1), (1, 0), (1, 1)), t):
        blocks[..., i, j] = value
    return blocks


def propagate_reference(
    fields: NDArray[np.complexfloating],
    blocks: NDArray[np.complexfloating],
    gamma: NDArray[np.floating],
    geometry: MeshGeometry,
) -> NDArray[np.complexfloating]:
    """Push fields through a batch of meshes, column by column, exactly as neurophox does.

    Any mode count and permutation; used as the reference for :func:`propagate` and for odd N.

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


def _is_grid(geometry: MeshGeometry) -> bool:
    return geometry.units % 2 == 0 and np.array_equal(
        geometry.perm_idx, grid_permutation(geometry.units, geometry.num_layers)
    )


def propagate(
    fields: NDArray[np.complexfloating],
    blocks: NDArray[np.complexfloating],
    gamma: NDArray[np.floating],
    geometry: MeshGeometry,
) -> NDArray[np.complexfloating]:
    """Push fields through a batch of meshes (fast path for rectangular meshes of even N).

    In a rectangular mesh the column permutations cancel in pairs: in the modes' own order,
    even columns couple (2k, 2k+1) and odd columns couple (2k+1, 2k+2), their last slot
    coupling (N-1, 0). The fields are kept as two contiguous arrays, even and odd modes, laid
    out ``(M, N//2, S)`` so that every update is one long contiguous numpy operation; no
    permutation is copied. Equal to :func:`propagate_reference` (tested to 1e-10 against
    neurophox).

    Args:
        fields: ``(M, N)`` shared by all settings, or ``(S, M, N)`` one batch per setting.
        blocks: ``(S, L, N//2, 2, 2)`` from :func:`mzi_blocks`.
        gamma: ``(S, N)`` input phases, radians.
        geometry: the mesh's fixed structure.

    Returns:
        ``(S, M, N)`` output fields.
    """
    if not _is_grid(geometry):
        return propagate_reference(fields, blocks, gamma, geometry)
    n, h = geometry.units, geometry.units // 2
    s = blocks.shape[0]
    phase = np.exp(1j * gamma).astype(blocks.dtype)  # (S, N)
    if fields.ndim == 2:
        x = fields[:, None, :] * phase[None]  # (M, S, N)
    else:
        x = fields.transpose(1, 0, 2) * phase[None]
    x = x.astype(blocks.dtype, copy=False)
    even = np.ascontiguousarray(x[..., 0::2].transpose(0, 2, 1))  # (M, h, S)
    odd = np.ascontiguousarray(x[..., 1::2].transpose(0, 2, 1))
    coeffs = np.ascontiguousarray(blocks.transpose(1, 3, 4, 2, 0))  # (L, 2, 2, h, S)
    new_a = np.empty_like(even)
    scratch = np.empty_like(even)
    for layer in range(geometry.num_layers):
        t = coeffs[layer]
        if layer % 2 == 0:
            a, b, t = even, odd, t
        else:
            a, b, t = odd[:, : h - 1], even[:, 1:], t[:, :, : h - 1]
        na, tmp = new_a[:, : a.shape[1]], scratch[:, : a.shape[1]]
        np.multiply(a, t[0, 0], out=na)
        np.multiply(b, t[1, 0], out=tmp)
        na += tmp
        np.multiply(a, t[0, 1], out=tmp)
        b *= t[1, 1]
        b += tmp
        a[...] = na
        if layer % 2 == 1:  # the wrap slot couples mode N-1 (odd) with mode 0 (even)
            w = coeffs[layer][:, :, h - 1]  # (2, 2, S)
            a0, b0 = odd[:, h - 1].copy(), even[:, 0].copy()
            odd[:, h - 1] = a0 * w[0, 0] + b0 * w[1, 0]
            even[:, 0] = a0 * w[0, 1] + b0 * w[1, 1]
    out = np.empty((s, x.shape[0], n), dtype=x.dtype)
    out[..., 0::2] = even.transpose(2, 0, 1)
    out[..., 1::2] = odd.transpose(2, 0, 1)
    return out


def transfer_matrices(
    blocks: NDArray[np.complexfloating], gamma: NDArray[np.floating], geometry: MeshGeometry
) -> NDArray[np.complexfloating]:
    """Transfer matrices ``U_s`` ``(S, N, N)`` of a batch of settings (row convention: ``x @ U``)."""
    eye = np.eye(geometry.units, dtype=blocks.dtype)
    return propagate(eye, blocks, gamma, geometry)

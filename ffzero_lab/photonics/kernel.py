"""The compiled evaluation of :mod:`.clements`' transfer: settings -> columns -> MZIs -> batch.

:func:`.clements.propagate` evaluates a batch of settings column by column as numpy passes over
``(S, B, N)`` arrays (about 0.1 flop per byte moved). Here the same transfer is compiled with
numba (:func:`.mzi.propagate_packed`): for each setting, every MZI block is built from the
setting's phases with :func:`.mzi.mzi_transfer` (the one formula, which :func:`.clements.mzi_blocks`
uses too) and a sine-cosine polynomial that the compiler vectorises; then the setting's field,
as ``(N, chunk)`` real and imaginary planes (32 kB: a chunk of the batch at a time, in the core's
L1 cache), goes through every column in place, each block a vectorised loop over the chunk.
Equal to the numpy reference to ~1e-15 (complex128) and ~1e-6 (complex64).

The settings of a call are split into contiguous chunks over ``threads`` threads; the compiled
function releases the GIL, so the chunks run in parallel. numba is imported on first use and its
machine code is cached on disk (``cache=True``), so only the first run on a machine compiles.

:class:`MeshEvaluator` chooses the path (``kernel='numba' | 'numpy' | 'auto'``, auto: numba when
it is installed); the simulated chip (``drivers/simulated/mesh.py``) calls it for every step.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.photonics.clements import MeshGeometry, mzi_blocks, propagate, splitter_amplitudes

Kernel = Literal["auto", "numba", "numpy"]

#: Bytes of one setting's field kept in the core's L1 data cache while the columns are applied.
_CACHE_BYTES = 32 * 1024


def available_threads() -> int:
    """Cores this process may run on (``os.sched_getaffinity``), capped by ``NUMBA_NUM_THREADS``
    when that is set (a sweep's worker gets its share this way)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    cap = os.environ.get("NUMBA_NUM_THREADS", "")
    if cap.strip().isdigit() and int(cap) > 0:
        cores = min(cores, int(cap))
    return max(1, cores)


def numba_available() -> bool:
    """True when numba is installed (found without importing it)."""
    return importlib.util.find_spec("numba") is not None


# -- layout: which storage rows each MZI couples, and which parameter each phase is --------------


def column_pairs(geometry: MeshGeometry) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The rows a mesh's MZIs couple when the field is never permuted, and where outputs end up.

    :func:`.clements.propagate_reference` permutes the field before each column and couples
    positions ``(2k, 2k+1)``; following the permutations instead gives, for slot ``k`` of column
    ``l``, the two input modes' rows ``pairs[l, k]`` that it couples in place.

    Returns:
        ``pairs (L, N//2, 2)`` row indices, and ``final (N,)``: output mode p is row ``final[p]``.
    """
    perm = geometry.perm_idx
    half = geometry.units // 2
    rows = perm[0].copy()  # rows[p]: the storage row at position p
    pairs = np.empty((geometry.num_layers, half, 2), dtype=np.int64)
    for layer in range(geometry.num_layers):
        pairs[layer] = rows[: 2 * half].reshape(half, 2)
        rows = rows[perm[layer + 1]]
    return pairs, rows.astype(np.int64)


def packed_layout(geometry: MeshGeometry) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Where each phase sits in a packed setting ``(thetas, phis, gammas)`` (the simulated chip's and
    the rig's parameter order: MZIs by column, then slot).

    Returns:
        ``theta_index, phi_index (L, N//2)`` (-1 for an empty slot, held at pi) and
        ``gamma_index (N,)``.
    """
    where = geometry.mask > 0
    m = int(where.sum())
    theta_index = np.full(where.shape, -1, dtype=np.int64)
    phi_index = np.full(where.shape, -1, dtype=np.int64)
    theta_index[where] = np.arange(m)
    phi_index[where] = m + np.arange(m)
    return theta_index, phi_index, 2 * m + np.arange(geometry.units, dtype=np.int64)


def unpack_settings(
    settings: NDArray[np.floating], theta_index: NDArray[np.int64], phi_index: NDArray[np.int64],
    gamma_index: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(S, n)`` settings -> theta, phi ``(S, L, N//2)`` (pi in empty slots) and gamma ``(S, N)``, rad."""
    settings = np.asarray(settings, dtype=np.float64)
    padded = np.concatenate([settings, np.full((settings.shape[0], 1), np.pi)], axis=1)  # index -1: pi
    return padded[:, theta_index], padded[:, phi_index], settings[:, gamma_index]


# -- the compiled kernel --------------------------------------------------------------------------

_compiled: dict[str, Callable[..., None]] = {}
_compile_lock = threading.Lock()


def _prefer_wide_vectors() -> None:
    """Let numba's LLVM use 512-bit vectors on an AVX-512 core (it prefers 256-bit ones there by
    default; the kernel runs ~1.3x faster with 512), unless ``NUMBA_CPU_FEATURES`` or
    ``NUMBA_CPU_NAME`` says otherwise. Must run before numba is first imported."""
    if "numba" in sys.modules or os.environ.get("NUMBA_CPU_FEATURES") or os.environ.get("NUMBA_CPU_NAME"):
        return
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    except Exception:  # an llvmlite that cannot tell: keep numba's defaults
        return
    if "+avx512f" in features.split(","):
        os.environ["NUMBA_CPU_FEATURES"] = features + ",-prefer-256-bit"


def _build() -> Callable[..., None]:
    """Compile (or load from numba's cache) the kernel; numba is imported here, on first use."""
    _prefer_wide_vectors()
    import numba

    from ffzero_lab.photonics import mzi

    fast = {"contract"}  # fused multiply-adds, no reassociation
    mzi._sincos_jit = numba.njit(mzi.sincos, inline="always", fastmath=fast)
    mzi._transfer_jit = numba.njit(mzi.mzi_transfer, inline="always")
    return numba.njit(mzi.propagate_packed, nogil=True, cache=True, fastmath=fast, boundscheck=False)


def compiled_kernel() -> Callable[..., None]:
    """The compiled kernel (built once per process; numba's disk cache spares later processes)."""
    with _compile_lock:
        if "run" not in _compiled:
            _compiled["run"] = _build()
        return _compiled["run"]


_pools: dict[int, ThreadPoolExecutor] = {}
if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads: it makes its own pools
    os.register_at_fork(after_in_child=_pools.clear)


def _pool(threads: int) -> ThreadPoolExecutor:
    with _compile_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="mesh-kernel")
        return _pools[threads]


class MeshEvaluator:
    """Output fields of a mesh for batches of packed settings, by the compiled kernel or numpy.

    Args:
        geometry: the mesh's structure, errors and losses.
        dtype: ``np.complex128`` or ``np.complex64``: the arithmetic's precision.
        kernel: ``numba`` (the compiled kernel), ``numpy`` (:func:`.clements.propagate`, the
            reference) or ``auto`` (numba when it is installed).
        threads: threads the settings of a call are split over; None: :func:`available_threads`.
        layout: ``(theta_index, phi_index, gamma_index)`` of the phases in a setting (see
            :func:`packed_layout`, the default).

    Raises:
        ImportError: ``kernel='numba'`` and numba is not installed.
    """

    def __init__(self, geometry: MeshGeometry, dtype: Any = np.complex128, kernel: Kernel = "auto",
                 threads: int | None = None,
                 layout: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]] | None = None) -> None:
        if kernel not in ("auto", "numba", "numpy"):
            raise ValueError(f"kernel must be 'auto', 'numba' or 'numpy', got {kernel!r}")
        if kernel == "numba" and not numba_available():
            raise ImportError("kernel 'numba' needs the numba package (pip install numba)")
        self.geometry = geometry
        self.dtype = np.dtype(dtype)
        self.kernel = "numba" if kernel == "numba" or (kernel == "auto" and numba_available()) else "numpy"
        self.threads = max(1, int(threads)) if threads is not None else available_threads()
        self.layout = packed_layout(geometry) if layout is None else layout
        self._pairs, self._final = column_pairs(geometry)
        self._amplitudes = np.ascontiguousarray(splitter_amplitudes(geometry))
        # batch samples per pass: the (N, chunk) real and imaginary planes fit in _CACHE_BYTES of L1
        itemsize = self.dtype.itemsize // 2
        self._chunk = max(16, (_CACHE_BYTES // (2 * geometry.units * itemsize)) // 16 * 16)
        if geometry.basis not in ("sm", "bloch"):
            raise ValueError(f"basis must be 'sm' or 'bloch', got {geometry.basis!r}")
        if geometry.external not in ("output", "input"):
            raise ValueError(f"external must be 'output' or 'input', got {geometry.external!r}")

    def fields(self, inputs: NDArray[np.generic], settings: NDArray[np.floating]) -> NDArray[np.complexfloating]:
        """Output fields ``(S, B, N)`` for inputs ``(B, N)`` (every setting) or ``(S, B, N)``
        under settings ``(S, n)`` (rad); ``outputs = inputs @ U_s``.

        A shared batch larger than N goes through the transfer matrices (``inputs @ U``).
        """
        settings = np.ascontiguousarray(settings, dtype=np.float64)
        inputs = np.asarray(inputs).astype(self.dtype, copy=False)
        n = self.geometry.units
        if inputs.ndim == 2 and inputs.shape[0] > n:
            return inputs @ self._fields(np.eye(n, dtype=self.dtype), settings)
        return self._fields(inputs, settings)

    def matrices(self, settings: NDArray[np.floating]) -> NDArray[np.complexfloating]:
        """Transfer matrices ``(S, N, N)`` (row convention ``x @ U``) of settings ``(S, n)``."""
        settings = np.ascontiguousarray(settings, dtype=np.float64)
        return self._fields(np.eye(self.geometry.units, dtype=self.dtype), settings)

    def _fields(
        self, inputs: NDArray[np.complexfloating], settings: NDArray[np.float64]
    ) -> NDArray[np.complexfloating]:
        if self.kernel == "numpy":
            theta, phi, gamma = unpack_settings(settings, *self.layout)
            return propagate(inputs, mzi_blocks(theta, phi, self.geometry, self.dtype), gamma, self.geometry)
        run = compiled_kernel()
        s = settings.shape[0]
        shared = inputs.ndim == 2
        inputs = np.ascontiguousarray(inputs[None] if shared else inputs)
        out = np.empty((s,) + inputs.shape[1:], dtype=self.dtype)
        g = self.geometry
        args = (self.layout[0], self.layout[1], self.layout[2], self._pairs, self._final, self._amplitudes,
                g.basis == "bloch", g.external == "input", self._chunk)
        chunks = min(self.threads, s)
        if chunks <= 1:
            run(inputs, shared, settings, *args, out)
            return out
        bounds = np.linspace(0, s, chunks + 1).astype(int)

        def part(i: int) -> None:
            lo, hi = bounds[i], bounds[i + 1]
            run(inputs if shared else inputs[lo:hi], shared, settings[lo:hi], *args, out[lo:hi])

        futures = [_pool(self.threads - 1).submit(part, i) for i in range(1, chunks)]
        part(0)  # the caller's thread takes the first chunk
        for future in futures:
            future.result()
        return out

"""The compiled mesh kernel (photonics/kernel.py) against the numpy reference (photonics/clements.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.photonics.clements import MeshGeometry, grid_permutation, mzi_blocks, propagate, rectangular_mask
from ffzero_lab.photonics.kernel import (
    MeshEvaluator,
    available_threads,
    column_pairs,
    packed_layout,
    unpack_settings,
)

pytest.importorskip("numba")


def geometry(n: int, basis: str, external: str, rng: np.random.Generator) -> MeshGeometry:
    """A mesh with random splitter errors and insertion losses on every MZI."""
    mask = rectangular_mask(n, n)
    errors = rng.normal(0.0, 0.05, mask.shape) * mask
    transmission = np.where(mask > 0, rng.uniform(0.9, 1.0, mask.shape), 1.0)
    return MeshGeometry(n, n, grid_permutation(n, n), mask, errors, basis, transmission, external)


def reference(g: MeshGeometry, inputs: np.ndarray, settings: np.ndarray) -> np.ndarray:
    theta, phi, gamma = unpack_settings(settings, *packed_layout(g))
    return propagate(inputs.astype(np.complex128), mzi_blocks(theta, phi, g), gamma, g)


def fields(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@pytest.mark.parametrize("n", [2, 5, 8, 9, 16])
@pytest.mark.parametrize("basis", ["sm", "bloch"])
@pytest.mark.parametrize("external", ["output", "input"])
def test_kernel_equals_the_numpy_reference_in_double_precision(n: int, basis: str, external: str) -> None:
    rng = np.random.default_rng(n * 7 + len(basis) + len(external))
    g = geometry(n, basis, external, rng)
    settings = rng.uniform(-10.0, 20.0, (5, g.n_params))  # any real phase, not only [0, 2 pi)
    x = fields(rng, 3, n)
    kernel = MeshEvaluator(g, np.complex128, "numba", threads=1)
    expected = reference(g, x, settings)
    assert np.max(np.abs(kernel.fields(x, settings) - expected)) < 1e-12
    per_setting = fields(rng, 5, 3, n)  # one batch per setting (a later layer of a network)
    assert np.max(np.abs(kernel.fields(per_setting, settings) - reference(g, per_setting, settings))) < 1e-12


def test_a_batch_longer_than_the_cached_chunk_and_huge_phases() -> None:
    rng = np.random.default_rng(1)
    g = geometry(64, "sm", "output", rng)
    kernel = MeshEvaluator(g, np.complex128, "numba", threads=1)
    assert kernel._chunk < 50  # the batch below goes through the columns in several chunks
    settings = rng.uniform(0, 2 * np.pi, (3, g.n_params))
    settings[1, ::7] += 3e5  # beyond the polynomial's range: math.sin/cos take over
    x = fields(rng, 50, 64)
    assert np.max(np.abs(kernel.fields(x, settings) - reference(g, x, settings))) < 1e-12


def test_single_precision_is_close_to_double() -> None:
    rng = np.random.default_rng(2)
    g = geometry(16, "sm", "input", rng)
    settings = rng.uniform(0, 2 * np.pi, (4, g.n_params))
    x = fields(rng, 6, 16)
    got = MeshEvaluator(g, np.complex64, "numba", threads=1).fields(x, settings)
    assert got.dtype == np.complex64
    expected = reference(g, x, settings)
    assert np.max(np.abs(got - expected)) < 2e-5 * np.max(np.abs(expected))
    numpy_single = MeshEvaluator(g, np.complex64, "numpy").fields(x, settings)
    assert np.max(np.abs(got - numpy_single)) < 2e-5 * np.max(np.abs(expected))


def test_threads_split_the_settings_and_change_nothing() -> None:
    rng = np.random.default_rng(3)
    g = geometry(8, "bloch", "output", rng)
    settings = rng.uniform(0, 2 * np.pi, (7, g.n_params))
    x = fields(rng, 4, 8)
    one = MeshEvaluator(g, threads=1, kernel="numba").fields(x, settings)
    for threads in (2, 3, 16):
        assert np.array_equal(MeshEvaluator(g, threads=threads, kernel="numba").fields(x, settings), one)


def test_matrices_and_large_batches_go_through_the_transfer_matrix() -> None:
    rng = np.random.default_rng(4)
    g = geometry(6, "sm", "output", rng)
    settings = rng.uniform(0, 2 * np.pi, (2, g.n_params))
    kernel = MeshEvaluator(g, kernel="numba", threads=1)
    u = kernel.matrices(settings)
    assert np.max(np.abs(u - reference(g, np.eye(6), settings))) < 1e-12
    x = fields(rng, 40, 6)  # B > N: x @ U
    assert np.max(np.abs(kernel.fields(x, settings) - x @ u)) < 1e-12


def test_column_pairs_follow_the_permutations() -> None:
    g = geometry(4, "sm", "output", np.random.default_rng(0))
    pairs, final = column_pairs(g)
    assert pairs[0].tolist() == [[0, 1], [2, 3]]  # even columns couple (0,1), (2,3)
    assert sorted(map(sorted, pairs[1].tolist())) == [[0, 3], [1, 2]]  # odd: (1,2) and the empty slot (3,0)
    assert sorted(final.tolist()) == [0, 1, 2, 3]


def test_the_numpy_path_and_the_choice_of_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    g = geometry(4, "sm", "output", np.random.default_rng(0))
    assert MeshEvaluator(g, kernel="auto").kernel == "numba"
    assert MeshEvaluator(g, kernel="numpy").kernel == "numpy"
    monkeypatch.setattr("ffzero_lab.photonics.kernel.numba_available", lambda: False)
    assert MeshEvaluator(g, kernel="auto").kernel == "numpy"
    with pytest.raises(ImportError, match="numba"):
        MeshEvaluator(g, kernel="numba")
    with pytest.raises(ValueError, match="kernel"):
        MeshEvaluator(g, kernel="fortran")  # type: ignore[arg-type]


def test_default_threads_are_the_cores_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    import os

    assert available_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    assert available_threads() == 1
    assert MeshEvaluator(geometry(4, "sm", "output", np.random.default_rng(0))).threads == 1

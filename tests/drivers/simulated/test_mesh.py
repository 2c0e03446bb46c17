"""The simulated MZI mesh (drivers/simulated): batched transfer vs neurophox, contract behaviour."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from drivers.simulated.mesh import MeshSettings, SimulatedMesh  # noqa: E402
from ffzero_lab.core.contract import ParameterRangeError  # noqa: E402
from ffzero_lab.photonics.activation import ElectroOpticActivation  # noqa: E402
from ffzero_lab.photonics.clements import (  # noqa: E402
    MeshGeometry,
    grid_permutation,
    mzi_blocks,
    rectangular_mask,
    transfer_matrices,
)

TWO_PI = 2 * np.pi


def random_fields(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    return rng.standard_normal((b, n)) + 1j * rng.standard_normal((b, n))


@pytest.fixture(scope="module")
def neurophox_numpy():
    """neurophox's numpy backend (imports TensorFlow once per module)."""
    return pytest.importorskip("neurophox.numpy")


@pytest.fixture(scope="module")
def mesh8() -> SimulatedMesh:
    return SimulatedMesh(8, MeshSettings(bs_error=0.05), seed=3)


@pytest.fixture(scope="module")
def meshes():
    """Meshes for the matrix checks, keyed by (modes, basis, bs_error); built once."""
    return {
        (n, basis, e): SimulatedMesh(n, MeshSettings(basis=basis, bs_error=e), seed=11)
        for n in (7, 8)
        for basis in ("sm", "bloch")
        for e in (0.0, 0.05)
    }


# -- structure ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [8, 9, 16, 64])
def test_n_squared_parameters(n):
    init = "random" if n == 64 else "haar_rect"
    mesh = SimulatedMesh(n, MeshSettings(init=init), seed=0)
    assert mesh.n_params == n * n
    assert mesh.geometry.n_mzis == n * (n - 1) // 2
    assert mesh.get_parameters().shape == (n * n,)
    assert len(mesh.bounds) == n * n
    assert mesh.in_features == mesh.ports == mesh.out_features == n


def test_too_few_modes_rejected():
    with pytest.raises(ValueError):
        SimulatedMesh(1, MeshSettings(), seed=0)


def test_parameter_names_are_distinct():
    mesh = SimulatedMesh(5, MeshSettings(init="random"), seed=0)
    names = mesh.bounds.names
    assert names is not None and len(set(names)) == mesh.n_params
    assert names[-1] == "gamma[4]"


def test_pack_unpack_round_trip(mesh8):
    p = mesh8.get_parameters()
    theta, phi, gamma = mesh8.unpack(p[None])
    np.testing.assert_array_equal(mesh8.pack(theta[0], phi[0], gamma[0]), p)


# -- physics ------------------------------------------------------------------------------


@pytest.mark.parametrize("bs_error", [0.0, 0.05])
@pytest.mark.parametrize("n", [8, 7])
def test_lossless_mesh_conserves_power(n, bs_error):
    rng = np.random.default_rng(n)
    mesh = SimulatedMesh(n, MeshSettings(bs_error=bs_error), seed=5)
    x = random_fields(rng, 6, n)
    settings = rng.uniform(0, TWO_PI, (3, mesh.n_params))
    taps = mesh.evaluate(x, settings)
    assert taps.shape == (3, 6, n)
    assert np.all(taps >= 0)
    np.testing.assert_allclose(taps.sum(axis=-1), np.broadcast_to((np.abs(x) ** 2).sum(axis=-1), (3, 6)), rtol=1e-12)
    u = mesh.matrix()
    np.testing.assert_allclose(u.conj().T @ u, np.eye(n), atol=1e-12)


def test_same_phases_same_matrix(mesh8):
    p = np.random.default_rng(1).uniform(0, TWO_PI, mesh8.n_params)
    old = mesh8.get_parameters()
    try:
        mesh8.set_parameters(p)
        a = mesh8.matrix()
        b = mesh8.matrix()
        np.testing.assert_array_equal(a, b)
        other = SimulatedMesh(8, MeshSettings(bs_error=0.05), seed=3)
        other.set_parameters(p)
        np.testing.assert_array_equal(other.matrix(), a)
    finally:
        mesh8.set_parameters(old)


def test_same_seed_same_mesh_different_seed_different():
    a = SimulatedMesh(8, MeshSettings(bs_error=0.05), seed=21)
    b = SimulatedMesh(8, MeshSettings(bs_error=0.05), seed=21)
    c = SimulatedMesh(8, MeshSettings(bs_error=0.05), seed=22)
    np.testing.assert_array_equal(a.get_parameters(), b.get_parameters())
    np.testing.assert_array_equal(a.matrix(), b.matrix())
    np.testing.assert_array_equal(a.state()["bs_error"], b.state()["bs_error"])
    assert not np.allclose(a.get_parameters(), c.get_parameters())
    assert not np.allclose(a.state()["bs_error"], c.state()["bs_error"])


@pytest.mark.parametrize("bs_error", [0.0, 0.05])
@pytest.mark.parametrize("basis", ["sm", "bloch"])
@pytest.mark.parametrize("n", [8, 7])
def test_matrix_matches_neurophox_reference(meshes, n, basis, bs_error):
    mesh = meshes[(n, basis, bs_error)]
    if bs_error:
        assert np.any(mesh.geometry.bs_error != 0)
    np.testing.assert_allclose(mesh.matrix(), mesh.reference_matrix(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("basis", ["sm", "bloch"])
@pytest.mark.parametrize("n", [8, 7])
def test_transfer_functions_match_plain_rmnumpy(neurophox_numpy, n, basis):
    """A standard neurophox RMNumpy mesh, its phases fed to the batched transfer functions."""
    saved = np.random.get_state()
    try:
        np.random.seed(100 + n)  # neurophox draws its initial phases from numpy's global RNG
        ref = neurophox_numpy.RMNumpy(n, basis=basis)
    finally:
        np.random.set_state(saved)
    from neurophox.helpers import grid_permutation as np_grid_permutation

    np.testing.assert_array_equal(grid_permutation(n, n), np_grid_permutation(n, n))
    np.testing.assert_array_equal(rectangular_mask(n, n), ref.mesh.model.mask)
    geometry = MeshGeometry(n, n, grid_permutation(n, n), rectangular_mask(n, n), np.zeros((n, n // 2)), basis)
    blocks = mzi_blocks(ref.theta[None], ref.phi[None], geometry)
    u = transfer_matrices(blocks, np.reshape(ref.gamma, (1, -1)), geometry)[0]
    np.testing.assert_allclose(u, ref.matrix, rtol=0, atol=1e-10)
    # and the same fields for a batch of inputs
    x = random_fields(np.random.default_rng(n), 3, n)
    np.testing.assert_allclose(x @ u, ref.transform(x), rtol=0, atol=1e-10)


# -- contract -----------------------------------------------------------------------------


def test_evaluate_shape_and_rows_equal_forward(mesh8):
    rng = np.random.default_rng(2)
    x = random_fields(rng, 5, 8)
    settings = rng.uniform(0, TWO_PI, (4, mesh8.n_params))
    old = mesh8.get_parameters()
    taps = mesh8.evaluate(x, settings)
    assert taps.shape == (4, 5, 8)
    assert taps.dtype == np.float64
    np.testing.assert_array_equal(mesh8.get_parameters(), old)  # evaluate leaves the parameters alone
    try:
        for s in range(4):
            mesh8.set_parameters(settings[s])
            fields, tap = mesh8.forward(x)
            np.testing.assert_allclose(taps[s], tap, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(tap, np.abs(fields) ** 2, rtol=1e-12)
            np.testing.assert_allclose(fields, x @ mesh8.matrix(), atol=1e-12)
    finally:
        mesh8.set_parameters(old)


def test_evaluate_does_not_change_parameters_even_on_error(mesh8):
    old = mesh8.get_parameters()
    bad = np.tile(old, (2, 1))
    bad[1, 3] = np.nan
    with pytest.raises(ParameterRangeError):
        mesh8.evaluate(np.eye(8), bad)
    np.testing.assert_array_equal(mesh8.get_parameters(), old)


def test_periodic_phases_wrap(mesh8):
    rng = np.random.default_rng(3)
    p = rng.uniform(0, TWO_PI, mesh8.n_params)
    old = mesh8.get_parameters()
    try:
        mesh8.set_parameters(p)
        u = mesh8.matrix()
        for shift in (TWO_PI, -TWO_PI, 3 * TWO_PI):
            mesh8.set_parameters(p + shift)
            got = mesh8.get_parameters()
            assert np.all(got >= 0) and np.all(got < TWO_PI)
            np.testing.assert_allclose(got, p, atol=1e-12)
            np.testing.assert_allclose(mesh8.matrix(), u, atol=1e-10)
        # evaluate wraps too
        x = np.eye(8)
        np.testing.assert_allclose(mesh8.evaluate(x, (p + TWO_PI)[None]), mesh8.evaluate(x, p[None]), atol=1e-10)
    finally:
        mesh8.set_parameters(old)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_parameters_rejected(mesh8, bad):
    old = mesh8.get_parameters()
    p = old.copy()
    p[10] = bad
    with pytest.raises(ParameterRangeError, match=r"theta|phi|gamma"):
        mesh8.set_parameters(p)
    np.testing.assert_array_equal(mesh8.get_parameters(), old)  # nothing was written


def test_get_parameters_returns_a_copy(mesh8):
    p = mesh8.get_parameters()
    p += 1.0
    assert not np.allclose(mesh8.get_parameters(), p)


def test_fabrication_errors_fixed_and_from_seed():
    settings = MeshSettings(bs_error=0.05)
    mesh = SimulatedMesh(8, settings, seed=9)
    errors = mesh.state()["bs_error"].copy()
    assert errors.shape == (8, 4)
    assert np.any(errors != 0)
    np.testing.assert_array_equal(errors[rectangular_mask(8, 8) == 0], 0.0)  # no error on empty slots
    p = mesh.get_parameters()
    u = mesh.matrix()
    rng = np.random.default_rng(4)
    for _ in range(20):
        mesh.set_parameters(rng.uniform(0, TWO_PI, mesh.n_params))
        mesh.matrix()
    np.testing.assert_array_equal(mesh.state()["bs_error"], errors)
    mesh.set_parameters(p)
    np.testing.assert_array_equal(mesh.matrix(), u)
    # rebuilt from the same seed: the same chip
    np.testing.assert_array_equal(SimulatedMesh(8, settings, seed=9).state()["bs_error"], errors)
    # the errors do not depend on the init scheme, only on the seed
    np.testing.assert_array_equal(
        SimulatedMesh(8, MeshSettings(bs_error=0.05, init="random"), seed=9).state()["bs_error"], errors
    )


def test_errors_scale_with_setting():
    small = SimulatedMesh(8, MeshSettings(bs_error=0.01, init="random"), seed=9).state()["bs_error"]
    large = SimulatedMesh(8, MeshSettings(bs_error=0.05, init="random"), seed=9).state()["bs_error"]
    np.testing.assert_allclose(large, 5 * small)
    zero = SimulatedMesh(8, MeshSettings(bs_error=0.0, init="random"), seed=9).state()["bs_error"]
    np.testing.assert_array_equal(zero, 0.0)


def test_matrix_path_for_large_batches_equals_propagation_path(mesh8):
    rng = np.random.default_rng(5)
    x = random_fields(rng, 21, 8)  # B > N: uses inputs @ U
    settings = rng.uniform(0, TWO_PI, (3, mesh8.n_params))
    big = mesh8.evaluate(x, settings)
    small = np.concatenate([mesh8.evaluate(x[i : i + 7], settings) for i in range(0, 21, 7)], axis=1)
    assert big.shape == small.shape == (3, 21, 8)
    np.testing.assert_allclose(big, small, rtol=1e-10, atol=1e-12)
    # and forward agrees for a large batch
    fields, taps = mesh8.forward(x)
    np.testing.assert_allclose(fields, x @ mesh8.matrix(), atol=1e-12)


def test_real_inputs_accepted(mesh8):
    x = np.random.default_rng(6).uniform(0, 1, (4, 8))
    taps = mesh8.evaluate(x, mesh8.get_parameters()[None])
    np.testing.assert_allclose(taps[0], np.abs(x @ mesh8.matrix()) ** 2, atol=1e-12)


def test_single_precision_close_to_double():
    double = SimulatedMesh(8, MeshSettings(bs_error=0.05), seed=4)
    single = SimulatedMesh(8, MeshSettings(bs_error=0.05, precision="single"), seed=4)
    np.testing.assert_array_equal(double.get_parameters(), single.get_parameters())
    assert single.matrix().dtype == np.complex64
    np.testing.assert_allclose(single.matrix(), double.matrix(), atol=1e-5)


# -- electro-optic activation -------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "gain", "bias"), [(0.1, 0.05, 0.0), (0.2, 2.0, 0.3), (0.0, 10.0, -1.2)])
def test_electro_optic_activation_intensity(alpha, gain, bias):
    z = random_fields(np.random.default_rng(7), 4, 9)
    f = ElectroOpticActivation(alpha, gain, bias)(z)
    assert f.shape == z.shape
    p = np.abs(z) ** 2
    expected = (1 - alpha) * np.cos((gain * p + bias) / 2) ** 2 * p
    np.testing.assert_allclose(np.abs(f) ** 2, expected, rtol=1e-12, atol=1e-15)


def test_electro_optic_activation_field_formula():
    z = np.array([[0.3 + 0.4j, -1.0 + 0.2j]])
    act = ElectroOpticActivation(0.1, 1.5, 0.7)
    ph = 1.5 * np.abs(z) ** 2 + 0.7
    expected = 1j * np.sqrt(0.9) * np.exp(-0.5j * ph) * np.cos(0.5 * ph) * z
    np.testing.assert_allclose(act(z), expected, rtol=1e-12)


def test_electro_optic_activation_is_nonlinear():
    act = ElectroOpticActivation(0.1, 2.0, 0.0)
    z = np.array([[0.5 + 0.0j]])
    assert not np.allclose(act(2 * z), 2 * act(z))


# -- the compiled kernel and the numpy reference ---------------------------------------------------


@pytest.mark.parametrize("precision, tolerance", [("double", 1e-12), ("single", 1e-5)])
def test_the_kernel_and_the_numpy_path_read_the_same_chip(precision: str, tolerance: float) -> None:
    pytest.importorskip("numba")
    readings = []
    for kernel in ("numba", "numpy"):
        settings = MeshSettings(preset="realistic", precision=precision, kernel=kernel, threads=2, shot_noise=False,
                                read_noise_W=0.0, adc_bits=0, laser_drift_per_sqrt_s=0.0)
        mesh = SimulatedMesh(9, settings, seed=5)
        assert mesh.evaluator.kernel == kernel
        rng = np.random.default_rng(0)
        x = random_fields(rng, 4, 9)
        phases = mesh.get_parameters() + 0.3 * rng.standard_normal((6, mesh.n_params))
        readings.append(mesh.evaluate(x, phases))
    assert np.max(np.abs(readings[0] - readings[1])) < tolerance * np.max(readings[1])


def test_kernel_numba_without_numba_is_refused_at_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setattr("drivers.simulated.mesh.numba_available", lambda: False)
    with pytest.raises(ValidationError, match="numba"):
        MeshSettings(kernel="numba")
    assert MeshSettings(kernel="auto").kernel == "auto"

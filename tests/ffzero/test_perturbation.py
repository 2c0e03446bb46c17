"""Directional-derivative gradient estimate (ALGORITHM.md eq. 12-14): sampler, settings, estimate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffzero_lab.ffzero.perturbation import (
    DirectionSampler,
    centre_loss,
    directional_gradient,
    perturbed_settings,
    settings_per_step,
)

N_DIMS = 20
EPS = 1e-3


@pytest.fixture(scope="module")
def quadratic():
    """f(x) = 0.5 x^T A x + b^T x with A symmetric PSD, a base point theta and grad f(theta)."""
    rng = np.random.default_rng(1234)
    m = rng.standard_normal((N_DIMS, N_DIMS))
    a = m @ m.T / N_DIMS  # symmetric PSD
    b = rng.standard_normal(N_DIMS)
    theta = rng.standard_normal(N_DIMS)

    def f(x: np.ndarray) -> np.ndarray:  # (S, n) -> (S,)
        return 0.5 * np.einsum("si,ij,sj->s", x, a, x) + x @ b

    return f, theta, a @ theta + b


def estimate(f, theta, sampler: DirectionSampler, eps: float = EPS) -> np.ndarray:
    v = sampler.draw().copy()
    return directional_gradient(f(perturbed_settings(theta, v, eps)), v, eps)


def mean_estimate(f, theta, k: int, draws: int, seed: int) -> np.ndarray:
    sampler = DirectionSampler(N_DIMS, k, seed)
    return np.mean([estimate(f, theta, sampler) for _ in range(draws)], axis=0)


def rel_err(g_hat: np.ndarray, g: np.ndarray) -> float:
    return float(np.linalg.norm(g_hat - g) / np.linalg.norm(g))


# -- the estimate -------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5])
def test_mean_estimate_converges_to_gradient(quadratic, k):
    f, theta, grad = quadratic
    few = rel_err(mean_estimate(f, theta, k, 20, seed=10 + k), grad)
    many = rel_err(mean_estimate(f, theta, k, 2000, seed=20 + k), grad)
    # expected relative error ~ sqrt((n - 1) / (K M)): ~0.97/sqrt(K) for M=20, ~0.1/sqrt(K) for M=2000
    assert many < 0.5 * few
    assert many < (0.15 if k == 1 else 0.1)


def test_mean_estimate_k1_many_draws_below_tenth(quadratic):
    f, theta, grad = quadratic
    assert rel_err(mean_estimate(f, theta, 1, 8000, seed=5), grad) < 0.1


@pytest.mark.parametrize("k", [1, 5])
def test_estimate_unbiased_including_factor_n(quadratic, k):
    """The mean's component along grad is 1 x grad, which needs the factor n/K."""
    f, theta, grad = quadratic
    g_hat = mean_estimate(f, theta, k, 3000, seed=30 + k)
    scale = float(g_hat @ grad / (grad @ grad))
    # (1/K) sum d_k v_k alone would give scale 1/n = 0.05, sum d_k v_k alone K/n = 0.05 or 0.25
    assert scale == pytest.approx(1.0, abs=0.1)


def test_orthonormal_basis_gives_exact_gradient(quadratic):
    """With K = n directions forming the standard basis, (n/K) sum d_k v_k is the gradient itself."""
    f, theta, grad = quadratic
    v = np.eye(N_DIMS)
    g_hat = directional_gradient(f(perturbed_settings(theta, v, EPS)), v, EPS)
    np.testing.assert_allclose(g_hat, grad, rtol=1e-6, atol=1e-8)


def test_single_direction_scaled_by_n(quadratic):
    f, theta, grad = quadratic
    j = 7
    v = np.zeros((1, N_DIMS))
    v[0, j] = 1.0
    g_hat = directional_gradient(f(perturbed_settings(theta, v, EPS)), v, EPS)
    expected = np.zeros(N_DIMS)
    expected[j] = N_DIMS * grad[j]
    np.testing.assert_allclose(g_hat, expected, rtol=1e-6, atol=1e-8)


def test_directional_gradient_hand_example():
    """n=2, K=2: d = [(3-1)/0.2, (0.5-1.5)/0.2] = [10, -5]; g = (2/2) (10 v0 - 5 v1)."""
    v = np.array([[1.0, 0.0], [0.6, 0.8]])
    losses = np.array([3.0, 0.5, 1.0, 1.5])  # plus rows, then minus rows
    g = directional_gradient(losses, v, 0.1)
    np.testing.assert_allclose(g, [10.0 - 3.0, -4.0])
    assert g.dtype == np.float64


# -- perturbed settings -------------------------------------------------------------------


def test_perturbed_settings_plus_rows_then_minus_rows():
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(6)
    v = rng.standard_normal((3, 6)).astype(np.float32)
    s = perturbed_settings(theta, v, 0.01)
    assert s.shape == (6, 6)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s[:3], theta + 0.01 * v.astype(np.float64))
    np.testing.assert_allclose(s[3:], theta - 0.01 * v.astype(np.float64))
    np.testing.assert_allclose((s[:3] + s[3:]) / 2, np.broadcast_to(theta, (3, 6)))


# -- direction sampler --------------------------------------------------------------------


def test_sampler_rows_are_float32_unit_vectors():
    sampler = DirectionSampler(50, 7, seed=3)
    for _ in range(3):
        v = sampler.draw()
        assert v.shape == (7, 50)
        assert v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v.astype(np.float64), axis=1), 1.0, atol=1e-6)


def test_sampler_directions_are_isotropic():
    """E[v v^T] = I / n for unit vectors drawn uniformly on the sphere."""
    n = 5
    sampler = DirectionSampler(n, 10, seed=4)
    v = np.concatenate([sampler.draw().astype(np.float64) for _ in range(2000)])
    np.testing.assert_allclose(v.T @ v / len(v), np.eye(n) / n, atol=0.01)


def test_sampler_reproducible_from_seed():
    a = DirectionSampler(20, 4, seed=11)
    b = DirectionSampler(20, 4, seed=11)
    c = DirectionSampler(20, 4, seed=12)
    first_a, first_b, first_c = a.draw().copy(), b.draw().copy(), c.draw().copy()
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.allclose(first_a, first_c)
    second_a = a.draw().copy()
    np.testing.assert_array_equal(second_a, b.draw())
    assert not np.allclose(first_a, second_a)  # successive draws differ


def test_sampler_state_restore_reproduces_next_draw():
    sampler = DirectionSampler(20, 4, seed=11)
    sampler.draw()
    saved = sampler.state()
    expected = [sampler.draw().copy() for _ in range(3)]
    sampler.draw()  # move on
    sampler.restore(saved)
    for e in expected:
        np.testing.assert_array_equal(sampler.draw(), e)


def test_sampler_state_is_json_and_restores_into_another_sampler():
    sampler = DirectionSampler(20, 4, seed=11)
    sampler.draw()
    saved = json.loads(json.dumps(sampler.state()))
    expected = sampler.draw().copy()
    other = DirectionSampler(20, 4, seed=999)
    other.restore(saved)
    np.testing.assert_array_equal(other.draw(), expected)


def test_sampler_rejects_zero_directions():
    with pytest.raises(ValueError):
        DirectionSampler(10, 0, seed=0)


# -- estimator choices: orthogonal directions, forward differences ------------------------


def sampled_estimates(f, theta, k: int, draws: int, seed: int, orthogonal: bool, difference: str,
                      eps: float = EPS) -> np.ndarray:
    sampler = DirectionSampler(N_DIMS, k, seed, orthogonal=orthogonal)
    out = []
    for _ in range(draws):
        v = sampler.draw().copy()
        out.append(directional_gradient(f(perturbed_settings(theta, v, eps, difference)), v, eps, difference))
    return np.array(out)


def test_orthogonal_directions_are_orthonormal_per_block() -> None:
    v = DirectionSampler(12, 4, seed=3, groups=2, orthogonal=True).draw().astype(np.float64)
    for block in v.reshape(4, 2, 6).transpose(1, 0, 2):
        np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-6)
    with pytest.raises(ValueError):
        DirectionSampler(6, 4, seed=3, groups=2, orthogonal=True)


def test_orthogonal_directions_unbiased_with_lower_variance(quadratic) -> None:
    """Each orthogonalised direction is still uniform on the sphere, so the mean estimate is the
    gradient; without overlaps between the K directions its spread is smaller."""
    f, theta, grad = quadratic
    gaussian = sampled_estimates(f, theta, 10, 3000, seed=41, orthogonal=False, difference="central")
    orthogonal = sampled_estimates(f, theta, 10, 3000, seed=42, orthogonal=True, difference="central")
    assert float(orthogonal.mean(axis=0) @ grad / (grad @ grad)) == pytest.approx(1.0, abs=0.05)
    assert rel_err(orthogonal.mean(axis=0), grad) < 0.06
    var_g = np.mean(np.sum((gaussian - grad) ** 2, axis=1))
    var_o = np.mean(np.sum((orthogonal - grad) ** 2, axis=1))
    # theory (linear part): E||g - grad||^2 = (n - 1)/K ||grad||^2 for independent unit directions and
    # (n - K)/K ||grad||^2 for orthogonal ones, a ratio (n - 1)/(n - K) = 1.9 here
    assert var_o < 0.85 * var_g


def test_orthogonal_full_basis_gives_gradient(quadratic) -> None:
    f, theta, grad = quadratic
    one = sampled_estimates(f, theta, N_DIMS, 1, seed=7, orthogonal=True, difference="central")[0]
    np.testing.assert_allclose(one, grad, rtol=1e-4, atol=1e-4)


def test_forward_difference_settings_and_cost() -> None:
    theta = np.arange(3.0)
    v = np.eye(3)[:2]
    s = perturbed_settings(theta, v, 0.5, "forward")
    assert s.shape == (settings_per_step(2, "forward"), 3) == (3, 3)
    np.testing.assert_array_equal(s[2], theta)
    np.testing.assert_array_equal(s[0], theta + 0.5 * v[0])
    assert settings_per_step(2, "central") == 4
    with pytest.raises(ValueError):
        perturbed_settings(theta, v, 0.5, "backward")


def test_forward_difference_exact_on_linear_and_biased_by_curvature(quadratic) -> None:
    """Forward differences of a linear loss are exact; on a quadratic the mean estimate is
    ``grad + (eps / 2) n E[(v^T A v) v] = grad`` only up to O(eps): the bias grows with eps while
    the central difference's does not (exact for a quadratic)."""
    f, theta, grad = quadratic
    b = np.random.default_rng(5).standard_normal(N_DIMS)
    v = np.eye(N_DIMS)
    linear = directional_gradient(perturbed_settings(theta, v, 0.3, "forward") @ b, v, 0.3, "forward")
    np.testing.assert_allclose(linear, b, rtol=1e-10)
    small = sampled_estimates(f, theta, 5, 3000, seed=51, orthogonal=False, difference="forward", eps=1e-3)
    assert float(small.mean(axis=0) @ grad / (grad @ grad)) == pytest.approx(1.0, abs=0.1)
    exact_basis = directional_gradient(f(perturbed_settings(theta, v, 0.5, "central")), v, 0.5, "central")
    np.testing.assert_allclose(exact_basis, grad, rtol=1e-8)
    biased = directional_gradient(f(perturbed_settings(theta, v, 0.5, "forward")), v, 0.5, "forward")
    a_diag = np.array([(f((theta + e)[None]) + f((theta - e)[None]) - 2 * f(theta[None]))[0] for e in v])  # e^T A e
    np.testing.assert_allclose(biased - grad, 0.5 * 0.5 * a_diag / 1.0, rtol=1e-8, atol=1e-10)


def test_centre_loss() -> None:
    central = np.array([3.0, 5.0, 1.0, 1.0])  # K = 2: pairs (3, 1) and (5, 1)
    assert centre_loss(central, 2, "central") == pytest.approx(2.5)
    assert centre_loss(np.array([3.0, 5.0, 4.0]), 2, "forward") == pytest.approx(4.0)

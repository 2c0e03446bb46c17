"""Step calibration from a batched probe: noise and derivative scale, eps and lr."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.ffzero.calibration import (
    Probe,
    analyse_probe,
    blocked,
    calibrate,
    choose_eps,
    choose_lr,
    probe_settings,
)
from ffzero_lab.ffzero.perturbation import DirectionSampler, directional_gradient, perturbed_settings

N = 400


def noisy_linear(grad: np.ndarray, sigma: float, rng: np.random.Generator):
    """L(theta) = grad . theta + N(0, sigma^2) per evaluation: every unit direction's derivative
    has variance ||grad||^2 / n, so the rms slope is ||grad|| / sqrt(n)."""
    return lambda settings: settings @ grad + sigma * rng.standard_normal(settings.shape[0])


def test_probe_settings_layout() -> None:
    theta = np.zeros(3)
    v = np.eye(3)[:2]
    s = probe_settings(theta, v, 0.1, repeats=4)
    assert s.shape == (4 + 4, 3)
    np.testing.assert_array_equal(s[:4], 0.0)
    np.testing.assert_allclose(s[4:6], 0.1 * v)
    np.testing.assert_allclose(s[6:], -0.1 * v)


def test_probe_measures_noise_and_slope() -> None:
    rng = np.random.default_rng(0)
    grad = rng.standard_normal(N)
    sigma, eps = 0.02, 0.05
    loss = noisy_linear(grad, sigma, rng)
    v = DirectionSampler(N, 400, seed=1).draw().copy()
    probe = analyse_probe(loss(probe_settings(np.zeros(N), v, eps, repeats=400)), 400, eps)
    assert probe.noise == pytest.approx(sigma, rel=0.1)
    # the noise inflates mean(d^2) by sigma^2 / (2 eps^2) = 0.08, of the same order as s^2 = 1: taken off
    assert probe.slope == pytest.approx(np.linalg.norm(grad) / np.sqrt(N), rel=0.1)
    assert probe.loss == pytest.approx(0.0, abs=3 * sigma / np.sqrt(400) + 1e-12)


def test_noise_free_probe() -> None:
    probe = analyse_probe(np.array([1.0, 1.0, 1.0, 1.3, 0.7]), 3, 0.1)
    assert probe.noise == 0.0 and probe.slope == pytest.approx(3.0)


def test_choose_eps_clears_each_floor() -> None:
    # noise: central pair difference 2 eps s >= snr sqrt(2) sigma
    eps, eps_noise, _, why = choose_eps(0.01, 0.5, 100, 0.0, snr=3.0, eps_min=1e-4)
    assert why == "noise" and eps == pytest.approx(3 * np.sqrt(2) * 0.01 / (2 * 0.5))
    assert choose_eps(0.01, 0.5, 100, 0.0, snr=3.0, eps_min=1e-4, difference="forward")[0] == pytest.approx(2 * eps)
    # resolution: eps / sqrt(n) >= dac_steps x step
    eps, _, eps_res, why = choose_eps(0.0, 0.5, 4096, 3e-4, dac_steps=4.0, eps_min=1e-3)
    assert why == "resolution" and eps == pytest.approx(4 * 3e-4 * 64)
    assert choose_eps(0.0, 0.5, 4096, 0.0, eps_min=1e-3) == (1e-3, 0.0, 0.0, "eps_min")
    assert choose_eps(1.0, 1e-9, 10, 0.0, eps_max=0.5)[0::3] == (0.5, "eps_max")
    assert np.isfinite(choose_eps(1.0, 0.0, 10, 0.0)[1])


def test_chosen_eps_makes_the_pair_stand_clear_of_noise() -> None:
    """At the chosen eps, a pair's difference over its noise is about snr."""
    rng = np.random.default_rng(2)
    grad = rng.standard_normal(N)
    sigma = 0.05
    loss = noisy_linear(grad, sigma, rng)
    v = DirectionSampler(N, 8, seed=3).draw().copy()
    probe = analyse_probe(loss(probe_settings(np.zeros(N), v, 0.1, repeats=8)), 8, 0.1)
    eps = choose_eps(probe.noise, probe.slope, N, 0.0, snr=3.0, eps_min=1e-6)[0]
    w = DirectionSampler(N, 2000, seed=4).draw().astype(np.float64)
    diffs = loss(eps * w) - loss(-eps * w)
    ratio = np.sqrt(np.mean(diffs**2) - 2 * sigma**2) / (np.sqrt(2) * sigma)
    assert 1.5 < ratio < 6.0


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_choose_lr_sgd_first_step_moves_target(optimizer) -> None:
    rng = np.random.default_rng(5)
    grad = rng.standard_normal(N)
    slope = np.linalg.norm(grad) / np.sqrt(N)
    k, target = 10, 0.003
    lr = choose_lr(optimizer, target, slope, N, k)
    sampler = DirectionSampler(N, k, seed=6)
    moves = []
    for _ in range(200):
        v = sampler.draw().copy()
        g = directional_gradient(perturbed_settings(np.zeros(N), v, 1e-3) @ grad, v, 1e-3)
        moves.append(np.sqrt(np.mean((lr * g) ** 2)))
    assert np.mean(moves) == pytest.approx(target, rel=0.1)


def test_choose_lr_adam_is_the_target() -> None:
    assert choose_lr("adam", 0.004, 123.0, N, 10) == 0.004


def test_calibrate_keeps_lr_without_target() -> None:
    probe = Probe(loss=0.5, noise=0.0, slope=0.01)
    kwargs = dict(n=4096, block_size=4096, directions=10, optimizer="adam", lr=0.007, resolution=0.0, snr=3.0,
                  dac_steps=4.0, eps_min=1e-3, eps_max=1.0, difference="central")
    kept = calibrate(probe, target_step=None, **kwargs)
    assert kept.lr == 0.007 and kept.eps == 1e-3 and kept.limited_by == "eps_min"
    assert calibrate(probe, target_step=0.002, **kwargs).lr == 0.002
    assert set(kept.as_dict()) >= {"eps", "lr", "noise", "slope", "resolution", "limited_by"}


def test_blocked() -> None:
    assert not blocked(1.01, 1.0, noise=0.01)
    assert blocked(1.03, 1.0, noise=0.01)
    assert blocked(1.0 + 1e-12, 1.0, noise=0.0)

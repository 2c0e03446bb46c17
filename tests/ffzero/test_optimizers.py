"""Optimiser steps fed with a gradient estimate: SGD, momentum, Adam; state round trip."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.ffzero.optimizers import (
    SGD,
    Adam,
    Momentum,
    make_optimizer,
)


@pytest.fixture
def theta_and_grads():
    rng = np.random.default_rng(0)
    return rng.standard_normal(6), [rng.standard_normal(6) for _ in range(8)]


def test_sgd_step():
    theta = np.array([1.0, -2.0, 0.5])
    g = np.array([0.5, 1.0, -4.0])
    np.testing.assert_allclose(SGD(3, 0.1).step(theta, g), theta - 0.1 * g)


def test_sgd_does_not_modify_inputs():
    theta = np.array([1.0, 2.0])
    g = np.array([1.0, 1.0])
    SGD(2, 0.5).step(theta, g)
    np.testing.assert_array_equal(theta, [1.0, 2.0])


def test_adam_first_step_moves_by_lr_sign():
    theta = np.zeros(5)
    g = np.array([3.0, -0.01, 100.0, -7.0, 0.5])
    new = Adam(5, 0.01).step(theta, g)
    np.testing.assert_allclose(new - theta, -0.01 * np.sign(g), rtol=1e-5)


def test_adam_hand_second_step():
    opt = Adam(1, 0.1, beta1=0.9, beta2=0.999, eps=0.0)
    theta = opt.step(np.array([0.0]), np.array([1.0]))
    theta = opt.step(theta, np.array([3.0]))
    m = 0.9 * 0.1 * 1 + 0.1 * 3  # = 0.39
    v = 0.999 * 0.001 * 1 + 0.001 * 9  # = 0.009999
    m_hat, v_hat = m / (1 - 0.81), v / (1 - 0.999**2)
    assert theta[0] == pytest.approx(-0.1 - 0.1 * m_hat / np.sqrt(v_hat))


def test_momentum_accumulates():
    opt = Momentum(2, 0.1, beta=0.9)
    g = np.array([1.0, -2.0])
    t1 = opt.step(np.zeros(2), g)
    np.testing.assert_allclose(t1, -0.1 * g)
    t2 = opt.step(t1, g)
    np.testing.assert_allclose(t2 - t1, -0.1 * 1.9 * g)
    t3 = opt.step(t2, g)
    np.testing.assert_allclose(t3 - t2, -0.1 * (1 + 0.9 + 0.81) * g)
    # a zero gradient still moves by the remembered velocity
    t4 = opt.step(t3, np.zeros(2))
    np.testing.assert_allclose(t4 - t3, -0.1 * 0.9 * 2.71 * g)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_state_restore_round_trip(name, theta_and_grads):
    theta, grads = theta_and_grads
    opt = make_optimizer(name, 6, 0.05)
    for g in grads[:3]:
        theta = opt.step(theta, g)
    saved = opt.state()
    expected = theta
    for g in grads[3:]:
        expected = opt.step(expected, g)
    # restore into a fresh optimiser and replay the same gradients
    fresh = make_optimizer(name, 6, 0.05)
    fresh.restore(saved)
    got = theta
    for g in grads[3:]:
        got = fresh.step(got, g)
    np.testing.assert_array_equal(got, expected)
    # the original, restored to the saved state, replays them too: state() was a copy
    opt.restore(saved)
    again = theta
    for g in grads[3:]:
        again = opt.step(again, g)
    np.testing.assert_array_equal(again, expected)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_fresh_optimizer_differs_from_restored(name, theta_and_grads):
    """The state matters: without restore the next step would differ (so the round trip test can fail)."""
    theta, grads = theta_and_grads
    opt = make_optimizer(name, 6, 0.05)
    for g in grads[:3]:
        theta = opt.step(theta, g)
    assert not np.allclose(make_optimizer(name, 6, 0.05).step(theta, grads[3]), opt.step(theta, grads[3]))


def test_make_optimizer_known_names():
    assert type(make_optimizer("sgd", 3, 0.1)) is SGD
    assert type(make_optimizer("momentum", 3, 0.1)) is Momentum
    opt = make_optimizer("adam", 3, 0.1)
    assert type(opt) is Adam
    assert opt.lr == 0.1 and opt.n == 3


def test_make_optimizer_unknown_name():
    with pytest.raises(ValueError, match="rmsprop"):
        make_optimizer("rmsprop", 3, 0.1)


def test_learning_rate_schedules():
    from ffzero_lab.ffzero.optimizers import learning_rate

    assert learning_rate(0.1, "constant", 0.7, 0.05) == 0.1
    assert learning_rate(0.1, "cosine", 0.0, 0.05) == pytest.approx(0.1)
    assert learning_rate(0.1, "cosine", 1.0, 0.05) == pytest.approx(0.005)
    assert learning_rate(0.1, "cosine", 0.5, 0.05) == pytest.approx(0.0525)
    with pytest.raises(ValueError):
        learning_rate(0.1, "step", 0.5, 0.05)

"""Cosine goodness (eq. 4), margin loss (eq. 5/16), regression loss (eq. 7-8), cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.ffzero.goodness import centre, cosine_goodness
from ffzero_lab.ffzero.losses import (
    cross_entropy,
    margin_loss,
    regression_loss,
    regression_prediction,
)


def unit_rows(rng: np.random.Generator, c: int, p: int) -> np.ndarray:
    x = rng.standard_normal((c, p))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def hand_cosine(z: np.ndarray, p: np.ndarray) -> float:
    return float(np.dot(z, p) / (np.linalg.norm(z) * np.linalg.norm(p)))


# -- goodness -----------------------------------------------------------------------------


def test_cosine_goodness_matches_hand_cosine_with_settings_axis():
    rng = np.random.default_rng(0)
    s, b, p, c = 3, 4, 7, 5
    taps = rng.standard_normal((s, b, p))
    protos = unit_rows(rng, c, p)
    g = cosine_goodness(taps, protos)
    assert g.shape == (s, b, c)
    for i in range(s):
        for j in range(b):
            for k in range(c):
                assert g[i, j, k] == pytest.approx(hand_cosine(taps[i, j], protos[k]), abs=1e-12)


def test_cosine_goodness_single_reading():
    z = np.array([3.0, 4.0])
    protos = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine_goodness(z, protos), [0.6, 0.8, -0.6])


def test_centred_goodness_is_cosine_of_centred_reading():
    rng = np.random.default_rng(1)
    taps = rng.uniform(0.0, 1.0, (2, 6, 8))  # non-negative, like intensities
    protos = unit_rows(rng, 4, 8)
    g = cosine_goodness(taps, protos, centred=True)
    for i in range(2):
        for j in range(6):
            z = taps[i, j] - taps[i, j].mean()
            for k in range(4):
                assert g[i, j, k] == pytest.approx(hand_cosine(z, protos[k]), abs=1e-12)
    # and it differs from the uncentred goodness
    assert not np.allclose(g, cosine_goodness(taps, protos))


def test_centre_subtracts_mean_over_ports():
    taps = np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    np.testing.assert_allclose(centre(taps), [[-2.0, -1.0, 3.0], [-1.0, -1.0, 2.0]])


def test_goodness_scale_invariant_and_bounded():
    rng = np.random.default_rng(2)
    taps = rng.standard_normal((5, 9))
    protos = unit_rows(rng, 3, 9)
    g = cosine_goodness(taps, protos)
    for scale in (1e-6, 0.3, 7.0, 1e6):
        np.testing.assert_allclose(cosine_goodness(scale * taps, protos), g, atol=1e-12)
        np.testing.assert_allclose(cosine_goodness(scale * taps, protos, centred=True),
                                   cosine_goodness(taps, protos, centred=True), atol=1e-12)
    # a negative scale flips the sign
    np.testing.assert_allclose(cosine_goodness(-taps, protos), -g, atol=1e-12)
    assert np.all(np.abs(g) <= 1.0 + 1e-12)


def test_goodness_of_prototype_itself_is_one():
    rng = np.random.default_rng(3)
    protos = unit_rows(rng, 4, 6)
    g = cosine_goodness(2.5 * protos, protos)
    np.testing.assert_allclose(np.diag(g), 1.0)


def test_zero_reading_gives_zero_goodness():
    protos = unit_rows(np.random.default_rng(4), 3, 5)
    g = cosine_goodness(np.zeros((2, 5)), protos)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g, 0.0)
    # a constant reading is zero once centred
    gc = cosine_goodness(np.full((2, 5), 0.7), protos, centred=True)
    assert np.all(np.isfinite(gc))
    np.testing.assert_allclose(gc, 0.0, atol=1e-12)


# -- margin loss --------------------------------------------------------------------------


def test_margin_loss_zero_when_well_separated():
    c, b = 4, 3
    labels = np.array([0, 2, 3])
    good = np.full((b, c), -0.5)
    good[np.arange(b), labels] = 1.0  # G_y - G_c = 1.5 >= margin 0.5
    for reduction in ("mean", "max"):
        assert margin_loss(good, labels, 0.5, reduction=reduction) == 0.0


def test_margin_loss_positive_when_not_separated():
    labels = np.array([0, 1])
    good = np.array([[0.2, 0.1, 0.0], [0.3, 0.25, -0.2]])  # true class ahead by less than the margin
    for reduction in ("mean", "max"):
        assert margin_loss(good, labels, 0.5, reduction=reduction) > 0.0
    # a wrong class ahead of the true one
    wrong = np.array([[0.1, 0.9, 0.0], [0.9, 0.1, 0.0]])
    for reduction in ("mean", "max"):
        assert margin_loss(wrong, labels, 0.0, reduction=reduction) > 0.0


HAND_GOODNESS = np.array([[0.6, 0.3, -0.3], [0.2, 0.5, 0.4]])
HAND_LABELS = np.array([0, 2])
# sample 0, y=0: ReLU(0.5-0.6+0.3)=0.2, ReLU(0.5-0.6-0.3)=0   -> mean 0.1,  max 0.2
# sample 1, y=2: ReLU(0.5-0.4+0.2)=0.3, ReLU(0.5-0.4+0.5)=0.6 -> mean 0.45, max 0.6


def test_margin_loss_mean_hand_value():
    assert margin_loss(HAND_GOODNESS, HAND_LABELS, 0.5, reduction="mean") == pytest.approx(0.275)


def test_margin_loss_max_hand_value():
    assert margin_loss(HAND_GOODNESS, HAND_LABELS, 0.5, reduction="max") == pytest.approx(0.4)


def test_margin_loss_weight_lambda_hand_value():
    # lambda = 0.5: sample 0: ReLU(-0.1+0.15)=0.05, ReLU(-0.1-0.15)=0 -> 0.025
    #               sample 1: ReLU(0.1+0.1)=0.2,    ReLU(0.1+0.25)=0.35 -> 0.275
    got = margin_loss(HAND_GOODNESS, HAND_LABELS, 0.5, weight=0.5, reduction="mean")
    assert got == pytest.approx((0.025 + 0.275) / 2)


def loop_margin(good: np.ndarray, labels: np.ndarray, m: float, lam: float, reduction: str) -> float:
    per = []
    for g, y in zip(good, labels):
        others = [g[c] for c in range(len(g)) if c != y]
        if reduction == "mean":
            per.append(sum(max(m - g[y] + lam * o, 0.0) for o in others) / len(others))
        else:
            per.append(max(m - g[y] + lam * max(others), 0.0))
    return float(np.mean(per))


@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_margin_loss_leading_settings_axis(reduction):
    rng = np.random.default_rng(5)
    k2, b, c = 6, 8, 5
    good = rng.uniform(-1, 1, (k2, b, c))
    labels = rng.integers(0, c, b)
    loss = margin_loss(good, labels, 0.3, weight=1.0, reduction=reduction)
    assert loss.shape == (k2,)
    for s in range(k2):
        assert loss[s] == pytest.approx(loop_margin(good[s], labels, 0.3, 1.0, reduction), abs=1e-12)
        assert loss[s] == pytest.approx(margin_loss(good[s], labels, 0.3, reduction=reduction), abs=1e-12)


def test_margin_loss_unknown_reduction():
    with pytest.raises(ValueError):
        margin_loss(HAND_GOODNESS, HAND_LABELS, 0.5, reduction="sum")


# -- regression ---------------------------------------------------------------------------


def test_regression_loss_hand_value():
    good = np.array([[0.5, -0.2], [1.0, 0.0]])
    targets = np.array([[0.75, 0.0], [1.0, 0.5]])  # t = 2y-1 = [[0.5, -1], [1, 0]]
    # sample 0: 0 + 0.8^2 = 0.64 ; sample 1: 0 + 0 = 0
    assert regression_loss(good, targets) == pytest.approx(0.32)


def test_regression_loss_settings_axis():
    rng = np.random.default_rng(6)
    good = rng.uniform(-1, 1, (4, 5, 2))
    targets = rng.uniform(0, 1, (5, 2))
    loss = regression_loss(good, targets)
    assert loss.shape == (4,)
    for s in range(4):
        expected = np.mean([np.sum((good[s, i] - (2 * targets[i] - 1)) ** 2) for i in range(5)])
        assert loss[s] == pytest.approx(expected)


def test_regression_loss_zero_at_target_and_prediction_inverts_target():
    targets = np.array([[0.0], [0.25], [1.0]])
    good = 2 * targets - 1
    assert regression_loss(good, targets) == 0.0
    np.testing.assert_allclose(regression_prediction(good), targets)


def test_regression_prediction_hand_values():
    np.testing.assert_allclose(regression_prediction(np.array([-1.0, 0.0, 0.5, 1.0])), [0.0, 0.5, 0.75, 1.0])


# -- cross-entropy ------------------------------------------------------------------------


def test_cross_entropy_matches_hand_log_softmax():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
    labels = np.array([0, 2])
    expected = np.mean(
        [-np.log(np.exp(l[y]) / np.exp(l).sum()) for l, y in zip(logits, labels)]
    )
    assert cross_entropy(logits, labels) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_settings_axis_and_large_logits():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((3, 4, 6)) * 5
    labels = rng.integers(0, 6, 4)
    ce = cross_entropy(logits, labels)
    assert ce.shape == (3,)
    for s in range(3):
        l = logits[s]
        log_softmax = l - np.log(np.exp(l).sum(axis=1, keepdims=True))
        assert ce[s] == pytest.approx(-log_softmax[np.arange(4), labels].mean(), rel=1e-12)
    # shift invariance and no overflow for huge logits
    big = cross_entropy(logits + 1000.0, labels)
    assert np.all(np.isfinite(big))
    np.testing.assert_allclose(big, ce, rtol=1e-9)


def test_cross_entropy_uniform_logits_is_log_c():
    assert cross_entropy(np.zeros((5, 10)), np.arange(5)) == pytest.approx(np.log(10))

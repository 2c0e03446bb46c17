"""ParameterBounds (reject, never clip; wrap periodic) and the digital DenseLayer."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.digital import DenseLayer, DenseSettings
from ffzero_lab.core.contract import ParameterBounds, ParameterRangeError, PhysicalLayer

TWO_PI = 2 * np.pi


@pytest.fixture
def mixed() -> ParameterBounds:
    """alpha in [0, 1], beta in [-1, 1], phase periodic on [0, 2 pi), offset periodic on [-1, 3)."""
    return ParameterBounds(
        lower=np.array([0.0, -1.0, 0.0, -1.0]),
        upper=np.array([1.0, 1.0, TWO_PI, 3.0]),
        periodic=np.array([False, False, True, True]),
        names=("alpha", "beta", "phase", "offset"),
    )


def test_in_range_values_pass_unchanged(mixed):
    v = np.array([0.5, -0.25, 1.0, 0.0])
    out = mixed.apply(v)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, v)
    # closed bounds for non-periodic parameters
    np.testing.assert_array_equal(mixed.apply(np.array([0.0, 1.0, 0.0, -1.0]))[:2], [0.0, 1.0])
    np.testing.assert_array_equal(mixed.apply(np.array([1.0, -1.0, 0.0, -1.0]))[:2], [1.0, -1.0])


@pytest.mark.parametrize(
    ("index", "value", "name"), [(0, 1.5, "alpha"), (0, -0.01, "alpha"), (1, 1.0001, "beta"), (1, -3.0, "beta")]
)
def test_out_of_range_rejected_naming_parameter(mixed, index, value, name):
    v = np.array([0.5, 0.0, 1.0, 0.0])
    v[index] = value
    with pytest.raises(ParameterRangeError, match=name):
        mixed.apply(v)


def test_rejection_never_clips_and_leaves_input_alone(mixed):
    v = np.array([2.0, 0.0, 7.0, 0.0])
    before = v.copy()
    with pytest.raises(ParameterRangeError) as info:
        mixed.apply(v)
    assert "alpha" in str(info.value) and "2" in str(info.value)
    np.testing.assert_array_equal(v, before)


def test_batched_values_name_the_offending_parameter(mixed):
    v = np.tile(np.array([0.5, 0.0, 1.0, 0.0]), (3, 1))
    v[2, 1] = 5.0
    with pytest.raises(ParameterRangeError, match="beta"):
        mixed.apply(v)
    ok = mixed.apply(np.tile(np.array([0.5, 0.0, 7.0, 4.0]), (3, 1)))
    assert ok.shape == (3, 4)


def test_periodic_values_wrap(mixed):
    out = mixed.apply(np.array([0.5, 0.0, 7.0, 4.5]))
    np.testing.assert_allclose(out, [0.5, 0.0, 7.0 - TWO_PI, 0.5])
    out = mixed.apply(np.array([0.5, 0.0, -1.0, -2.0]))
    np.testing.assert_allclose(out, [0.5, 0.0, TWO_PI - 1.0, 2.0])
    out = mixed.apply(np.array([0.5, 0.0, TWO_PI, 3.0]))  # upper bound is exclusive: wraps to lower
    np.testing.assert_allclose(out, [0.5, 0.0, 0.0, -1.0], atol=1e-15)


def test_phase_bounds_wrap_into_half_open_interval():
    b = ParameterBounds.phases(5)
    out = b.apply(np.array([-0.5, 10.0, -100.0, 0.0, 4 * np.pi + 1.0]))
    assert np.all(out >= 0.0) and np.all(out < TWO_PI)
    np.testing.assert_allclose(out, [TWO_PI - 0.5, 10.0 - TWO_PI, -100.0 + 32 * np.pi, 0.0, 1.0], atol=1e-12)


def test_tiny_negative_phase_wraps_below_upper():
    out = ParameterBounds.phases(2).apply(np.array([-1e-17, -1e-20]))
    assert np.all(out < TWO_PI)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("index", [1, 2])
def test_non_finite_rejected_naming_parameter(mixed, bad, index):
    v = np.array([0.5, 0.0, 1.0, 0.0])
    v[index] = bad
    with pytest.raises(ParameterRangeError, match=mixed.name(index)):
        mixed.apply(v)


def test_wrong_length_rejected(mixed):
    with pytest.raises(ParameterRangeError):
        mixed.apply(np.zeros(3))


def test_unbounded_accepts_any_finite_value():
    b = ParameterBounds.unbounded(4)
    v = np.array([1e300, -1e300, 0.0, -5.5])
    np.testing.assert_array_equal(b.apply(v), v)
    with pytest.raises(ParameterRangeError, match=r"parameter\[2\]"):
        b.apply(np.array([0.0, 0.0, np.nan, 0.0]))


def test_default_names():
    b = ParameterBounds.unbounded(3)
    assert b.name(1) == "parameter[1]"
    assert len(b) == 3


def test_range_error_is_a_value_error():
    assert issubclass(ParameterRangeError, ValueError)


# -- DenseLayer ---------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_dense_evaluate_is_affine_per_setting(bias):
    layer = DenseLayer(5, 3, DenseSettings(bias=bias), seed=0)
    assert isinstance(layer, PhysicalLayer)
    n = 5 * 3 + (3 if bias else 0)
    assert layer.n_params == n
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 5))
    settings = rng.standard_normal((4, n))
    z = layer.evaluate(x, settings)
    assert z.shape == (4, 7, 3)
    for s in range(4):
        w = settings[s, :15].reshape(3, 5)
        b = settings[s, 15:] if bias else np.zeros(3)
        np.testing.assert_allclose(z[s], x @ w.T + b, rtol=1e-12, atol=1e-12)


def test_dense_forward_uses_current_parameters_and_evaluate_leaves_them():
    layer = DenseLayer(4, 2, DenseSettings(), seed=2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4))
    p = layer.get_parameters()
    np.testing.assert_array_equal(p[8:], 0.0)  # biases start at zero
    layer.evaluate(x, rng.standard_normal((3, 10)))
    np.testing.assert_array_equal(layer.get_parameters(), p)
    out, tap = layer.forward(x)
    w = p[:8].reshape(2, 4)
    np.testing.assert_allclose(out, x @ w.T + p[8:])
    np.testing.assert_array_equal(out, tap)
    new = rng.standard_normal(10)
    layer.set_parameters(new)
    np.testing.assert_array_equal(layer.get_parameters(), new)
    np.testing.assert_allclose(layer.forward(x)[1], x @ new[:8].reshape(2, 4).T + new[8:])


def test_dense_rejects_non_finite_settings():
    layer = DenseLayer(2, 2, DenseSettings(), seed=0)
    with pytest.raises(ParameterRangeError):
        layer.evaluate(np.ones((1, 2)), np.array([[1.0, 2.0, np.nan, 0.0, 0.0, 0.0]]))
    with pytest.raises(ParameterRangeError):
        layer.set_parameters(np.full(6, np.inf))


def test_dense_init_is_seeded_and_scaled():
    a = DenseLayer(400, 50, DenseSettings(init_scale=2.0), seed=5).get_parameters()
    b = DenseLayer(400, 50, DenseSettings(init_scale=2.0), seed=5).get_parameters()
    np.testing.assert_array_equal(a, b)
    w = a[: 400 * 50]
    assert np.std(w) == pytest.approx(2.0 / np.sqrt(400), rel=0.05)

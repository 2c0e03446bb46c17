"""The pure checks every heater write passes: quantisation, limits, power budget, write order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.instruments.limits import (
    check_channel_limits,
    heater_power_W,
    on_grid_inside,
    quantize_toward_zero,
)
from ffzero_lab.core.contract import ParameterRangeError
from ffzero_lab.photonics.heaters import PhaseLaws
from ffzero_lab.rig import LimitError, PowerBudget, PowerBudgetError, power_ordered_steps, rising_power_W

from .conftest import heater_limits


def test_quantize_toward_zero_formats_exactly_and_never_grows() -> None:
    values = np.array([1.23456, -1.23456, 0.3, 1e-5, 5.99999999999, -0.00004, 2.0])
    q = quantize_toward_zero(values, 4)
    np.testing.assert_array_equal(q, [1.2345, -1.2345, 0.3, 0.0, 5.9999, -0.0, 2.0])
    assert np.all(np.abs(q) <= np.abs(values))
    assert all(float(f"{x:.4f}") == x for x in q)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.one_of(st.floats(-1.0, 7.0, allow_nan=False),
                          st.integers(-10_000, 70_000).map(lambda k: float(np.nextafter(k / 1e4, 0.0))),
                          st.sampled_from([0.0, -0.0, 1e-12, 6.0, np.inf, np.nan])), min_size=1, max_size=8))
def test_on_grid_inside_answers_only_with_the_quantisation_inside_the_window(values: list[float]) -> None:
    v = np.array(values)
    low, high = np.full(v.size, 1e-12), np.full(v.size, 6.0 - 1e-8)
    q = on_grid_inside(v, 4, low, high)
    exact = quantize_toward_zero(v, 4)
    inside = bool(np.all((exact >= low) & (exact <= high)))
    if q is None:  # the caller then quantizes and checks the usual way: only a refusal or the rare round-up
        assert not inside or np.any(np.trunc(v * 1e4) / 1e4 > v)
    else:
        np.testing.assert_array_equal(q, exact)
        assert inside


def test_on_grid_inside_leaves_a_product_that_rounded_up_to_the_usual_path() -> None:
    v = np.array([1.0, 0.0036999999999999997])  # * 1e4 rounds up to 37: trunc alone would give 0.0037
    assert on_grid_inside(v, 4, np.full(2, 1e-12), np.full(2, 6.0)) is None
    np.testing.assert_array_equal(quantize_toward_zero(v, 4), [1.0, 0.0036])


def test_rising_power_is_the_peak_less_the_channels_present_power() -> None:
    old, new = np.array([0.01, 0.03, 0.0]), np.array([0.02, 0.01, 0.0])
    peak = np.maximum(old, new).sum()  # each heater at the larger of its two powers
    assert rising_power_W(old, new) == pytest.approx(peak - old.sum()) == pytest.approx(0.01)


def test_channel_limits() -> None:
    limits = heater_limits(3, voltage_max_V=5.0, current_max_mA=10.0, resistance_ohm=400.0, voltage_min_V=-1.0)
    ch = np.array([0, 1, 2])
    check_channel_limits("q", ch, np.array([4.0, -1.0, 0.0]), "V", limits)  # 4 V / 400 ohm = 10 mA: at the limit
    with pytest.raises(LimitError, match="'q' channel 2: 5.5 V is above the limit voltage_max_V = 5 V") as info:
        check_channel_limits("q", ch, np.array([1.0, 1.0, 5.5]), "V", limits)
    assert (info.value.channel, info.value.value, info.value.limit) == (2, 5.5, 5.0)
    with pytest.raises(LimitError, match="channel 0: 11.25 mA is above the limit current_max_mA \\(V/R\\) = 10 mA"):
        check_channel_limits("q", ch, np.array([4.5, 0.0, 0.0]), "V", limits)
    with pytest.raises(LimitError, match="channel 1: -2 V is below the limit voltage_min_V = -1 V"):
        check_channel_limits("q", ch, np.array([0.0, -2.0, 0.0]), "V", limits)
    with pytest.raises(ParameterRangeError, match="channel 1: inf is not finite"):
        check_channel_limits("q", ch, np.array([0.0, np.inf, 0.0]), "V", limits)


def test_power_budget() -> None:
    power = heater_power_W(np.array([1.0, 2.0]), np.array([100.0, 200.0]))
    np.testing.assert_allclose(power, [0.01, 0.02])
    budget = PowerBudget(0.05)
    budget.record("other", np.array([0.02]))
    assert budget.check("q", power) == pytest.approx(0.05)
    budget.record("other", np.array([0.03]))
    with pytest.raises(PowerBudgetError, match="'q': 0.06 W is above the limit power_budget_W"):
        budget.check("q", power)
    with pytest.raises(PowerBudgetError):
        PowerBudget(1.0).check("q", np.array([np.nan]))


def test_a_shared_budget_counts_every_instrument() -> None:
    budget = PowerBudget(0.05)
    budget.record("a", np.array([0.01, 0.02]))
    assert budget.check("b", np.array([0.02])) == pytest.approx(0.05)
    with pytest.raises(PowerBudgetError, match="instrument 'b'"):
        budget.check("b", np.array([0.021]))
    budget.record("a", np.array([0.0]))  # 'a' re-recorded, not added
    assert budget.drawn_W == 0.0


def test_power_ordered_steps() -> None:
    old = np.array([2.0, 1.0, 1.0, 1.0, -1.0, 0.0])
    new = np.array([1.0, 2.0, 1.0, -2.0, 0.5, 0.0])
    falling, crossing = power_ordered_steps(old, new)
    np.testing.assert_array_equal(falling, [True, False, False, False, False, False])
    np.testing.assert_array_equal(crossing, [False, False, False, True, True, False])


def test_phase_calibration() -> None:
    cal = PhaseLaws.from_p_pi([0.5, 0.0], p_pi_W=[0.025, 0.025], resistance_ohm=[400.0, 400.0])
    k = np.pi / 10.0  # rad/V^2
    np.testing.assert_allclose(cal.voltages_V([0.5 + np.pi, 2 * np.pi + 0.1]), [np.sqrt(np.pi / k), np.sqrt(0.1 / k)])
    np.testing.assert_allclose(cal.voltages_V([0.4], channels=[0]), [np.sqrt((2 * np.pi - 0.1) / k)])
    with pytest.raises(ValueError, match="positive"):
        PhaseLaws(np.zeros(2), np.array([1.0, 0.0]))

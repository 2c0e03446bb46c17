"""The heater-driver base through a Qontrol on a fake resource: write order, shared budget."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.instruments.qontrol import Qontrol, QontrolError
from drivers.instruments.transcript import ExpectedProtocol
from ffzero_lab.rig import LimitError, PowerBudget, PowerBudgetError

from .conftest import heater_limits


def state(volts: list[str]) -> list:
    return [("nchan?", str(len(volts))), ("Vall?", volts[0])] + [(None, v) for v in volts[1:]]


def test_power_falls_before_it_rises_when_the_budget_is_tight() -> None:
    # 10 mW before, 12 mW after, but 14 mW if channels 1 and 3 rose before channel 2 fell
    fake = ExpectedProtocol([
        *state(["2.0000", "0.0000", "1.0000", "0.0000"]),
        ("V2=0.0000", "OK"),                      # step 1: the falling channel
        ("VVEC0=2.0000,1.0000", "OK"),            # step 2: the rest, in runs
        ("V3=1.0000", "OK"),
    ])
    q = Qontrol(fake, "q8", heater_limits(4), PowerBudget(0.013))
    q.set_voltages_V([3, 1, 0, 2], [1.0, 1.0, 2.0, 0.0])
    np.testing.assert_array_equal(q.voltages_V, [2.0, 1.0, 0.0, 1.0])
    fake.assert_done()


def test_one_line_when_no_order_of_the_writes_can_cross_the_budget() -> None:
    fake = ExpectedProtocol([
        *state(["2.0000", "0.0000", "1.0000", "0.0000"]),
        ("VVEC0=2.0000,1.0000,0.0000,1.0000", "OK"),  # at most 14 mW on the way, budget 14 mW
    ])
    q = Qontrol(fake, "q8", heater_limits(4), PowerBudget(0.014))
    q.set_voltages_V([3, 1, 0, 2], [1.0, 1.0, 2.0, 0.0])
    np.testing.assert_array_equal(q.voltages_V, [2.0, 1.0, 0.0, 1.0])
    fake.assert_done()


def test_long_runs_are_split_at_vector_max() -> None:
    fake = ExpectedProtocol([*state(["0"] * 5), ("VVEC0=1.0000,1.0000", "OK"), ("VVEC2=1.0000,1.0000", "OK"),
                             ("V4=1.0000", "OK")])
    q = Qontrol(fake, "q8", heater_limits(5), PowerBudget(1.0), Qontrol.settings_model(vector_max=2))
    q.set_voltages_V(range(5), [1.0] * 5)
    fake.assert_done()


def test_two_instruments_share_one_budget() -> None:
    budget = PowerBudget(0.02)
    a = Qontrol(ExpectedProtocol([*state(["0", "0"]), ("V0=3.0000", "OK")]), "a", heater_limits(2), budget)
    b = Qontrol(ExpectedProtocol(state(["0", "0"])), "b", heater_limits(2), budget)
    a.set_voltage_V(0, 3.0)  # 18 mW of 20
    with pytest.raises(PowerBudgetError, match="instrument 'b': 0.026 W is above the limit power_budget_W"):
        b.set_voltage_V(1, 1.0 * 2)  # +8 mW
    assert budget.drawn_W == pytest.approx(0.018)


def test_an_instrument_found_over_budget_can_only_go_to_a_state_within_it() -> None:
    fake = ExpectedProtocol([*state(["5.0000", "5.0000"]), ("V0=0.0000", "OK")])
    q = Qontrol(fake, "q8", heater_limits(2), PowerBudget(0.06))  # found at 100 mW
    with pytest.raises(PowerBudgetError):
        q.set_voltage_V(0, 4.0)  # 82 mW: still over
    q.set_voltage_V(0, 0.0)  # 50 mW
    fake.assert_done()


def test_a_channel_list_is_remembered_by_its_values_and_checked_again_when_they_change() -> None:
    fake = ExpectedProtocol([*state(["0"] * 4), ("VVEC0=1.0000,1.0000", "OK"), ("VVEC0=2.0000,2.0000", "OK")])
    q = Qontrol(fake, "q8", heater_limits(4), PowerBudget(1.0))
    channels = np.array([0, 1])
    q.set_voltages_V(channels, [1.0, 1.0])
    q.set_voltages_V(channels, [2.0, 2.0])  # the same list: remembered
    channels[1] = 4  # the caller's array changed after it was remembered
    with pytest.raises(ValueError, match="channel 4 is outside 0..3"):
        q.set_voltages_V(channels, [1.0, 1.0])
    with pytest.raises(ValueError, match="a channel is given twice"):
        q.set_voltages_V(np.array([1, 0, 1]), [1.0, 1.0, 1.0])
    fake.assert_done()


def test_new_limits_or_vector_max_take_effect_at_the_next_write() -> None:
    fake = ExpectedProtocol([*state(["0"] * 4), ("VVEC0=3.0000,3.0000,3.0000", "OK"), ("VVEC0=1.0000,1.0000", "OK"),
                             ("V2=1.0000", "OK")])
    q = Qontrol(fake, "q8", heater_limits(4), PowerBudget(1.0))
    q.set_voltages_V([0, 1, 2], [3.0, 3.0, 3.0])
    q.limits = heater_limits(4, voltage_max_V=2.0)
    with pytest.raises(LimitError, match="channel 0: 3 V is above the limit voltage_max_V = 2 V"):
        q.set_voltages_V([0, 1, 2], [3.0, 3.0, 3.0])
    q.settings.vector_max = 2
    q.set_voltages_V([0, 1, 2], [1.0, 1.0, 1.0])
    fake.assert_done()


def test_after_a_failed_write_the_budget_counts_the_worse_case_until_the_state_is_read_again() -> None:
    budget = PowerBudget(1.0)
    fake = ExpectedProtocol([*state(["1.0000", "0.0000"]), ("VVEC0=2.0000,2.0000", "E15:00"),
                             *state(["1.0000", "0.0000"]), ("V1=1.0000", "OK")])
    q = Qontrol(fake, "q8", heater_limits(2), budget)
    with pytest.raises(QontrolError, match="E15"):
        q.set_voltages_V([0, 1], [2.0, 2.0])
    assert budget.drawn_W == pytest.approx(0.016)  # 2 x 2 V on 500 ohm: part of it might have been taken
    q.set_voltage_V(1, 1.0)  # reads every channel first (1 V, 0 V: 2 mW), then writes
    assert budget.drawn_W == pytest.approx(0.004)
    fake.assert_done()

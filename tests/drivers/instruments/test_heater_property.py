"""Property: no sequence of requested voltages, currents, phases, calibrations and limits makes a
heater driver write a value outside a channel's limits or exceed the power budget.

The Qontrol driver runs against :class:`FakeQontrol`, a recording resource at the pyvisa edge
that applies every command to a model of the instrument's outputs and checks, after each one,
every channel's limits and the total heater power (the state between commands included).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drivers.instruments.limits import (
    HeaterLimits,
    equivalent_voltage_V,
    heater_power_W,
)
from drivers.instruments.qontrol import Qontrol, QontrolSettings
from ffzero_lab.core.contract import ParameterRangeError
from ffzero_lab.photonics.heaters import PhaseLaws
from ffzero_lab.rig import PowerBudget

SET = re.compile(r"^(V|I|VVEC)(\d+)=(.+)$")


class FakeQontrol:
    """A Qontrol's outputs, in V or mA per channel; asserts the limits after every command."""

    resource_name = "FAKE::INSTR"
    timeout = 100

    def __init__(self, limits: HeaterLimits, budget_W: float, other_W: float) -> None:
        self.limits, self.budget_W, self.other_W = limits, budget_W, other_W
        n = limits.channels
        self.value = np.zeros(n)
        self.unit = np.full(n, "V", dtype="<U2")
        self.commands: list[str] = []
        self.pending: list[str] = []

    def volts(self) -> np.ndarray:
        """Voltage across each heater now, V (computed as the driver computes it)."""
        out = self.value.copy()
        amps = self.unit == "mA"
        out[amps] = equivalent_voltage_V(self.value[amps], "mA", self.limits.resistance_ohm[amps])
        return out

    def assert_within_limits(self) -> None:
        lim, volts = self.limits, self.volts()
        milliamps = np.where(self.unit == "mA", np.abs(self.value), np.abs(volts) / lim.resistance_ohm * 1e3)
        assert np.all(volts <= lim.voltage_max_V) and np.all(volts >= lim.voltage_min_V), (self.commands[-1], volts)
        assert np.all(milliamps <= lim.current_max_mA), (self.commands[-1], milliamps)
        total = self.other_W + float(np.sum(heater_power_W(volts, lim.resistance_ohm)))
        assert total <= self.budget_W, (self.commands[-1], total, self.budget_W)

    def query(self, command: str) -> str:
        self.commands.append(command)
        if command == "nchan?":
            return f"{self.limits.channels}\n"
        if command == "Vall?":
            self.pending = [f"{v:.4f}" for v in self.volts()]
            return self.pending.pop(0) + "\n"
        if command.startswith("V") and command.endswith("?"):
            return f"{self.volts()[int(command[1:-1])]:.4f}\n"
        kind, first, values = SET.match(command).groups()  # type: ignore[union-attr]
        numbers = [float(v) for v in values.split(",")]
        channels = slice(int(first), int(first) + len(numbers))
        self.value[channels] = numbers
        self.unit[channels] = "mA" if kind == "I" else "V"
        self.assert_within_limits()
        return "OK\n"

    def read(self) -> str:
        return self.pending.pop(0) + "\n"

    def close(self) -> None:
        pass


FRACTION = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5]), st.floats(-0.3, 1.4, allow_nan=False))


@st.composite
def scenario(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 8))
    floats = lambda lo, hi: draw(st.lists(st.floats(lo, hi, allow_nan=False), min_size=n, max_size=n))  # noqa: E731
    vmax = np.array(floats(0.5, 12.0))
    bipolar = draw(st.booleans())
    vmin = -vmax * np.array(floats(0.0, 1.0)) if bipolar else np.zeros(n)
    limits = HeaterLimits(vmin, vmax, np.array(floats(1.0, 24.0)), np.array(floats(50.0, 2000.0)), np.zeros(n))
    budget_W = draw(st.floats(1e-3, 2.0))
    calibration = PhaseLaws(np.array(floats(0.0, 2 * np.pi)), np.array(floats(0.05, 5.0)))
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["V", "mA", "phase", "safe"]))
        channels = draw(st.permutations(range(n)))[: draw(st.integers(1, n))]
        fractions = np.array(draw(st.lists(FRACTION, min_size=len(channels), max_size=len(channels))))
        ops.append((kind, np.array(channels), fractions))
    return {"limits": limits, "budget_W": budget_W, "other_W": draw(st.floats(0.0, 0.9)) * budget_W,
            "calibration": calibration, "vector_max": draw(st.integers(1, 8)), "ops": ops}


def request(driver: Qontrol, s: dict[str, Any], kind: str, channels: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Make one request; return what each channel's heater should then see, V."""
    lim = s["limits"]
    if kind == "safe":
        driver.safe_state()
        return lim.safe_V.copy()
    if kind == "V":
        values = fractions * lim.voltage_max_V[channels]
        driver.set_voltages_V(channels, values)
    elif kind == "mA":
        values = fractions * lim.current_max_mA[channels]
        driver.set_currents_mA(channels, values)
    else:
        values = s["calibration"].voltages_V(fractions * 2 * np.pi, channels)
        driver.set_voltages_V(channels, values)
    # what was written is the request on the instrument's grid (1e-4 V, 1e-3 mA), never farther from 0
    unit = "mA" if kind == "mA" else "V"
    resistance = lim.resistance_ohm[channels]
    written = driver.voltages_V[channels]
    wanted = equivalent_voltage_V(values, unit, resistance)
    quantum = equivalent_voltage_V(np.full(channels.size, 10.0 ** -Qontrol.decimals[unit]), unit, resistance)
    assert np.all(np.abs(written) <= np.abs(wanted)) and np.all(np.abs(wanted - written) <= quantum * 1.000001)
    return driver.voltages_V


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_no_request_sequence_crosses_a_limit_or_the_budget(s: dict[str, Any]) -> None:
    fake = FakeQontrol(s["limits"], s["budget_W"], s["other_W"])
    budget = PowerBudget(s["budget_W"])
    budget.record("other heaters", np.array([s["other_W"]]))
    driver = Qontrol(fake, "q8", s["limits"], budget, QontrolSettings(vector_max=s["vector_max"]))
    for kind, channels, fractions in s["ops"]:
        before_commands, before_state = len(fake.commands), fake.volts()
        try:
            expected = request(driver, s, kind, channels, fractions)
            event(f"{kind} accepted")
        except ParameterRangeError:  # LimitError and PowerBudgetError: nothing was written
            event(f"{kind} refused")
            assert all(c.endswith("?") for c in fake.commands[before_commands:])  # reads only
            np.testing.assert_array_equal(fake.volts(), before_state)
            continue
        np.testing.assert_allclose(fake.volts(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(budget.drawn_W, s["other_W"] + driver.power_W, rtol=1e-9)

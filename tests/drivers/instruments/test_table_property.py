"""Property: no sequence of sweep tables and single writes, whatever limits and budget, makes the
NI-DAQmx analog-output driver put a sample beyond a channel's limits or the power budget onto the
instrument: hardware timing (``load_table``: a whole table, every row and every step between two
rows) and software timing (``set_voltages_V``: on-demand writes) alike.

nidaqmx is faked at its edge: the interpreter whose ``write_raw`` would send the DAC codes to the
driver (or the gRPC server). It decodes every write and checks it against the limits and the budget.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drivers.instruments.limits import HeaterLimits, heater_power_W
from drivers.instruments.ni.analog_output import NiAnalogOutput, NiOutputSettings
from ffzero_lab.core.contract import ParameterRangeError
from ffzero_lab.rig import HardwareTiming, PowerBudget

C1 = 3276.8  # codes per volt of a 16-bit +-10 V module (DAQmx_AO_DevScalingCoeff = [0, 3276.8])


class FakeInterpreter:
    """The edge of nidaqmx: every raw write decoded to volts and held against the limits and budget."""

    def __init__(self, limits: HeaterLimits, budget_W: float, other_W: float) -> None:
        self.limits, self.budget_W, self.other_W = limits, budget_W, other_W
        self.out = np.zeros(limits.channels)  # what the module puts out now, V (0 at power-up)
        self.writes = 0

    def write_raw(self, handle: str, n: int, auto_start: bool, timeout: float, codes: np.ndarray) -> int:
        self.writes += 1
        volts = codes.reshape(n, -1).astype(np.float64) / C1
        lim = self.limits
        current_V = lim.current_max_mA * lim.resistance_ohm / 1e3
        assert np.all(volts <= lim.voltage_max_V + 1e-12) and np.all(volts >= lim.voltage_min_V - 1e-12), volts
        assert np.all(np.abs(volts) <= current_V + 1e-12), volts
        rows = np.vstack([self.out[None], volts])
        # every step between two rows, in any order of the channels: each at the larger of its two powers
        steps = np.maximum(heater_power_W(rows[:-1], lim.resistance_ohm), heater_power_W(rows[1:], lim.resistance_ohm))
        assert np.all(self.other_W + steps.sum(axis=1) <= self.budget_W * (1 + 1e-9)), steps.sum(axis=1)
        self.out = volts[-1]
        return n


def fake_task(interpreter: FakeInterpreter, handle: str) -> Any:
    task = SimpleNamespace(_handle=handle, _interpreter=interpreter, channel_names=["Dev1/ao0"])
    task.out_stream = SimpleNamespace(_task=task, regen_mode=None)
    task.ao_channels = _Channels()
    task.timing = SimpleNamespace(cfg_samp_clk_timing=lambda *a, **k: None)
    task.triggers = SimpleNamespace(start_trigger=SimpleNamespace(cfg_dig_edge_start_trig=lambda *a: None))
    task.start = task.wait_until_done = task.stop = task.close = lambda *a: None
    return task


class _Channels:
    """``task.ao_channels``: channels are added; each reports the module's scaling."""

    def add_ao_voltage_chan(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getitem__(self, name: str) -> Any:
        return SimpleNamespace(ao_dev_scaling_coeff=[0.0, C1])


class FakeSession:
    where = "fake nidaqmx"

    def __init__(self, interpreter: FakeInterpreter) -> None:
        self.interpreter = interpreter

    def task(self, role: str) -> Any:
        return fake_task(self.interpreter, role)

    def close(self) -> None:
        pass


FRACTION = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 1.0000001, float("nan")]),
                     st.floats(-0.3, 1.4, allow_nan=False))


@st.composite
def scenario(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 6))
    floats = lambda lo, hi: np.array(draw(st.lists(st.floats(lo, hi, allow_nan=False), min_size=n,  # noqa: E731
                                                   max_size=n)))
    vmax = floats(0.5, 9.9)
    vmin = -vmax * floats(0.0, 1.0) if draw(st.booleans()) else np.zeros(n)
    limits = HeaterLimits(vmin, vmax, floats(1.0, 24.0), floats(50.0, 2000.0), np.zeros(n))
    budget_W = draw(st.floats(1e-3, 1.0))
    ops = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["table", "table", "set", "safe"]))
        channels = np.array(draw(st.permutations(range(n)))[: draw(st.integers(1, n))])
        rows = draw(st.integers(1, 5)) if kind == "table" else 1
        fractions = np.array(draw(st.lists(FRACTION, min_size=rows * channels.size, max_size=rows * channels.size)))
        ops.append((kind, channels, fractions.reshape(rows, channels.size)))
    return {"limits": limits, "budget_W": budget_W, "other_W": draw(st.floats(0.0, 0.9)) * budget_W, "ops": ops}


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_no_table_or_write_puts_a_sample_beyond_a_limit_or_the_budget(s: dict[str, Any]) -> None:
    fake = FakeInterpreter(s["limits"], s["budget_W"], s["other_W"])
    budget = PowerBudget(s["budget_W"])
    budget.record("other heaters", np.array([s["other_W"]]))
    driver = NiAnalogOutput(FakeSession(fake), "ao", s["limits"], budget, NiOutputSettings(), "Dev1/ao0:0",
                            HardwareTiming(mode="hardware", start_trigger="/Dev2/ao/StartTrigger"))
    lim = s["limits"]
    for kind, channels, fractions in s["ops"]:
        writes, before = fake.writes, fake.out.copy()
        span = np.where(fractions < 0, -lim.voltage_min_V[channels], lim.voltage_max_V[channels])
        volts = fractions * span
        try:
            if kind == "table":
                driver.load_table(channels, volts, 1e3)
            elif kind == "set":
                driver.set_voltages_V(channels, volts[0])
            else:
                driver.safe_state()
            event(f"{kind} accepted")
        except ParameterRangeError:  # LimitError, PowerBudgetError, not finite: nothing was written
            event(f"{kind} refused")
            assert fake.writes <= writes + (1 if writes == 0 else 0)  # at most the first safe write
            if writes:
                np.testing.assert_array_equal(fake.out, before)
            continue
        # the driver's account is what the module puts out
        np.testing.assert_allclose(driver.voltages_V, fake.out, atol=1e-12)

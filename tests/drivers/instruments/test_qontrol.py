"""Qontrol Q8iv driver: command transcripts against the pyvisa-sim device in sims/qontrol.yaml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import pyvisa

from drivers.instruments.qontrol import Qontrol, QontrolError
from drivers.instruments.transcript import Recorder
from ffzero_lab.rig import InstrumentError, LimitError, PowerBudgetError

from .conftest import heater_on_sim

ZEROS = [("nchan?", "8"), ("Vall?", "0.0000")] + [(None, "0.0000")] * 7


def qontrol(sim: Callable[[str], pyvisa.ResourceManager], resource: str = "ASRL1::INSTR", channels: int = 8,
            **kwargs: Any) -> tuple[Qontrol, Recorder]:
    """A Qontrol named 'q8' on a fresh simulated device (see :func:`heater_on_sim`)."""
    return heater_on_sim(sim("qontrol"), resource, Qontrol, "q8", channels, **kwargs)


def test_identify(sim) -> None:
    q, res = qontrol(sim, sync=False)
    identity = q.identify()
    assert res.log == [("id?", "Q8iv-0042"), ("nchan?", "8"), ("vfull?", "12.000 V"), ("ifull?", "24.000 mA")]
    assert (identity.model, identity.channels, identity.voltage_range_V, identity.current_max_mA) == (
        "Q8iv",
        8,
        (0.0, 12.0),
        24.0,
    )


def test_first_write_reads_every_channel_first(sim) -> None:
    q, res = qontrol(sim, sync=False)
    q.set_voltage_V(3, 1.234)
    assert res.log == ZEROS + [("V3=1.2340", "OK")]
    assert q.voltages_V[3] == 1.234
    assert q.power_W == pytest.approx(1.234**2 / 500)


def test_values_are_quantised_toward_zero(sim) -> None:
    q, res = qontrol(sim)
    q.set_voltage_V(3, 1.23409)
    assert res.log == [("V3=1.2340", "OK")]


def test_consecutive_channels_go_in_one_vvec_line(sim) -> None:
    q, res = qontrol(sim)
    q.set_voltages_V([2, 0, 1], [2.0, 1.0, 1.5])
    assert res.log == [("VVEC0=1.0000,1.5000,2.0000", "OK")]
    np.testing.assert_array_equal(q.voltages_V[:3], [1.0, 1.5, 2.0])


def test_current_mode(sim) -> None:
    q, res = qontrol(sim)
    q.set_currents_mA([2], [5.0])
    assert q.read_currents_mA([2])[0] == pytest.approx(5.001)
    assert res.log == [("I2=5.000", "OK"), ("I2?", "5.001")]
    assert q.voltages_V[2] == pytest.approx(2.5)  # 5 mA through 500 ohm


@pytest.mark.parametrize(
    ("call", "limits", "message"),
    [
        (lambda q: q.set_voltage_V(3, 6.5), {}, "'q8' channel 3: 6.5 V is above the limit voltage_max_V = 6 V"),
        (lambda q: q.set_voltage_V(3, -0.1), {}, "'q8' channel 3: -0.1 V is below the limit voltage_min_V = 0 V"),
        (
            lambda q: q.set_voltage_V(1, 2.5),
            {"resistance_ohm": 100.0},
            "channel 1: 25 mA is above the limit current_max_mA (V/R) = 20 mA",
        ),
        (lambda q: q.set_currents_mA([2], [25.0]), {}, "channel 2: 25 mA is above the limit current_max_mA = 20 mA"),
        (lambda q: q.set_currents_mA([2], [15.0]), {}, "channel 2: 7.5 V is above the limit voltage_max_V (I*R) = 6 V"),
        (
            lambda q: q.set_voltages_V([0, 1], [3.0, 3.0]),
            {"budget_W": 0.03},
            "'q8': 0.036 W is above the limit power_budget_W (all heaters together) = 0.03 W",
        ),
    ],
)
def test_a_value_outside_a_limit_writes_nothing(sim, call, limits, message) -> None:
    q, res = qontrol(sim, **limits)
    error = PowerBudgetError if "budget_W" in limits else LimitError
    with pytest.raises(error, match="nothing was written") as info:
        call(q)
    assert message in str(info.value)
    assert res.log == []
    assert q.power_W == 0.0


def test_read_back_verification(sim) -> None:
    q, res = qontrol(sim, verify=True)
    q.set_voltage_V(3, 1.234)  # reads back 1.2338: within 10 mV
    with pytest.raises(InstrumentError, match=r"'q8' channel 4: read back 0.0000 V after writing 2.0000 V"):
        q.set_voltage_V(4, 2.0)
    assert res.log == [("V3=1.2340", "OK"), ("V3?", "1.2338"), ("V4=2.0000", "OK"), ("V4?", "0.0000")]


def test_safe_state_and_hardware_limits(sim) -> None:
    q, res = qontrol(sim, channels=2)
    q.limits.voltage_max_V[1] = 4.0
    q.apply_hardware_limits()
    q.set_voltages_V([0, 1], [0.5, 0.5])
    q.safe_state()
    assert res.log == [
        ("VMAX0=6.0000", "OK"), ("IMAX0=20.000", "OK"), ("VMAX1=4.0000", "OK"), ("IMAX1=20.000", "OK"),
        ("VVEC0=0.5000,0.5000", "OK"), ("VVEC0=0.0000,0.0000", "OK"),
    ]
    assert q.power_W == 0.0


@pytest.mark.parametrize(
    ("call", "limits", "code", "channel", "command", "description"),
    [
        (
            lambda q: q.set_voltage_V(5, 9.0),
            {"voltage_max_V": 12.0, "resistance_ohm": 1000.0},
            1,
            5,
            "V5=9.0000",
            "over-voltage",
        ),
        (
            lambda q: q.set_currents_mA([5], [20.0]),
            {"voltage_max_V": 12.0, "current_max_mA": 24.0},
            2,
            5,
            "I5=20.000",
            "over-current",
        ),
        (
            lambda q: q.set_voltages_V(range(8), [1.0] * 8),
            {},
            14,
            0,
            "VVEC0=" + ",".join(["1.0000"] * 8),
            "buffer overflow",
        ),
        (lambda q: q.set_voltage_V(6, 1.0), {}, 15, 6, "V6=1.0000", "communication error"),
        (lambda q: q.set_voltage_V(7, 1.0), {}, 3, 7, "V7=1.0000", "power error"),
    ],
)
def test_error_replies_raise_naming_instrument_channel_command(
    sim, call, limits, code, channel, command, description
) -> None:
    q, res = qontrol(sim, **limits)
    with pytest.raises(QontrolError) as info:
        call(q)
    assert info.value.code == code and info.value.channel == channel and info.value.command == command
    assert (
        str(info.value) == f"instrument 'q8' channel {channel}: error E{code:02d} ({description}) (command {command!r})"
    )
    # After a refused write the driver no longer trusts its state: the next write reads it first.
    res.log.clear()
    q.set_voltage_V(3, 1.234)
    assert res.log == ZEROS + [("V3=1.2340", "OK")]


def test_unknown_command_error(sim) -> None:
    q, res = qontrol(sim, resource="ASRL2::INSTR", sync=False)
    with pytest.raises(
        QontrolError, match=r"'q8' channel 0: error E10 \(unknown command\) \(command 'nchan\?'\)"
    ) as info:
        q.identify()
    assert info.value.code == 10
    assert res.log == [("id?", "Q8b-0007"), ("nchan?", "E10:00")]


def test_no_reply_is_a_timeout_naming_instrument_and_resource(sim) -> None:
    q, _ = qontrol(sim, resource="ASRL3::INSTR", sync=False)
    with pytest.raises(
        InstrumentError, match=r"^instrument 'q8': no reply from ASRL3::INSTR within 200 ms \(command 'id\?'\)$"
    ):
        q.identify()


def test_bad_channel_arguments(sim) -> None:
    q, res = qontrol(sim)
    for channels, values, message in [([8], [1.0], "channel 8 is outside 0..7"), ([1, 1], [1.0, 1.0], "twice"),
                                      ([1, 2], [1.0], "2 channels but 1 values"), ([0.5], [1.0], "integers")]:
        with pytest.raises(ValueError, match=message):
            q.set_voltages_V(channels, values)
    with pytest.raises(ValueError, match="not finite"):
        q.set_voltage_V(1, float("nan"))
    assert res.log == []

"""Keithley 2600 (TSP) driver: transcripts against the pyvisa-sim 2602B in sims/keithley2600.yaml."""

from __future__ import annotations

import pytest

from drivers.instruments.keithley2600 import Keithley2600
from ffzero_lab.rig import InstrumentError, LimitError

from .conftest import heater_on_sim

NO_ERRORS = ("print(errorqueue.count)", "0.00000e+00")


def test_identify(sim) -> None:
    smu, res = heater_on_sim(sim("keithley2600"), "GPIB0::26::INSTR", Keithley2600, "smu", 2, sync=False)
    identity = smu.identify()
    assert res.log == [("*IDN?", "Keithley Instruments Inc., Model 2602B, 4123456, 3.2.2")]
    assert (identity.model, identity.channels, identity.voltage_range_V, identity.current_max_mA) == (
        "2602B", 2, (-40.0, 40.0), 3000.0)


def test_not_a_2600(sim) -> None:
    smu, _ = heater_on_sim(sim("keithley2600"), "GPIB0::24::INSTR", Keithley2600, "smu", 2, sync=False)
    with pytest.raises(InstrumentError, match="'smu': not a Keithley 2600"):
        smu.identify()


def test_configure_write_read_and_output_off(sim) -> None:
    smu, res = heater_on_sim(sim("keithley2600"), "GPIB0::26::INSTR", Keithley2600, "smu", 2, sync=False)
    smu.configure()
    smu.set_voltage_V(0, 1.234)
    assert smu.read_currents_mA() == pytest.approx([2.468, 0.0])
    smu.output_off()
    assert res.log == [
        ("smua.source.func = smua.OUTPUT_DCVOLTS", None), ("smua.source.limiti = 0.020000", None), NO_ERRORS,
        ("smub.source.func = smub.OUTPUT_DCVOLTS", None), ("smub.source.limiti = 0.020000", None), NO_ERRORS,
        # the safe state, after reading where the outputs are
        ("print(smua.measure.v())", "0.00000e+00"), ("print(smub.measure.v())", "0.00000e+00"),
        ("smua.source.levelv = 0.0000", None), ("smub.source.levelv = 0.0000", None), NO_ERRORS,
        ("smua.source.output = smua.OUTPUT_ON", None), ("smub.source.output = smub.OUTPUT_ON", None), NO_ERRORS,
        ("smua.source.levelv = 1.2340", None), NO_ERRORS,
        ("print(smua.measure.i())", "2.46800e-03"), ("print(smub.measure.i())", "0.00000e+00"),
        # within the budget in any order: one batch
        ("smua.source.levelv = 0.0000", None), ("smub.source.levelv = 0.0000", None), NO_ERRORS,
        ("smua.source.output = smua.OUTPUT_OFF", None), ("smub.source.output = smub.OUTPUT_OFF", None), NO_ERRORS,
    ]


def test_limit_checked_before_writing(sim) -> None:
    smu, res = heater_on_sim(sim("keithley2600"), "GPIB0::26::INSTR", Keithley2600, "smu", 2)
    with pytest.raises(LimitError, match="'smu' channel 1: 7 V is above the limit voltage_max_V = 6 V"):
        smu.set_voltage_V(1, 7.0)
    assert res.log == []


def test_error_queue_entry_raises_naming_channel_and_command(sim) -> None:
    smu, res = heater_on_sim(sim("keithley2600"), "GPIB0::27::INSTR", Keithley2600, "smu", 2)
    with pytest.raises(InstrumentError) as info:
        smu.set_voltage_V(1, 1.0)
    assert str(info.value) == (
        "instrument 'smu' channel 1: error -221: Settings conflict (command 'smub.source.levelv = 1.0000')")
    assert res.log == [("smub.source.levelv = 1.0000", None), ("print(errorqueue.count)", "1.00000e+00"),
                       ("print(errorqueue.next())", "-221\tSettings conflict\t2\t0")]


def test_no_current_mode(sim) -> None:
    smu, res = heater_on_sim(sim("keithley2600"), "GPIB0::26::INSTR", Keithley2600, "smu", 2)
    with pytest.raises(NotImplementedError, match="by voltage only"):
        smu.set_currents_mA([0], [1.0])

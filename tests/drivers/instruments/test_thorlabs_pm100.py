"""Thorlabs PM100 driver: transcripts against the pyvisa-sim PM100USB in sims/thorlabs_pm100.yaml."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.instruments.thorlabs_pm100 import PM100Settings, ThorlabsPM100
from ffzero_lab.rig import InstrumentError

from .conftest import on_sim

RESOURCE = "USB0::0x1313::0x8072::P2000000::INSTR"


def pm100(sim, **settings) -> tuple[ThorlabsPM100, object]:
    recorder = on_sim(sim("thorlabs_pm100"), RESOURCE, ThorlabsPM100)
    return ThorlabsPM100(recorder, "pm", PM100Settings(**settings)), recorder


def test_identify_configure_measure(sim) -> None:
    meter, res = pm100(sim, averages=10)
    assert meter.identify().model == "PM100USB"
    meter.configure()
    np.testing.assert_allclose(meter.fetch_power_W(), [1.234e-6])
    assert res.log == [
        ("*IDN?", "Thorlabs,PM100USB,P2000000,1.4.0"),
        ("SENS:CORR:WAV 1550", None), ("SENS:POW:UNIT W", None), ("SENS:RANGE:AUTO ON", None),
        ("SENS:AVER:COUN 10", None), (":SYST:ERR?", '0,"No error"'),
        ("MEAS:POW?", "1.234000E-06"),
    ]


def test_an_error_in_configuration_raises(sim) -> None:
    meter, _ = pm100(sim, wavelength_nm=1310)  # the simulated sensor knows only 1550 nm
    with pytest.raises(
        InstrumentError, match=r"'pm': instrument reports error -113,\"Undefined header\" \(command 'configure'\)"
    ):
        meter.configure()

"""Keysight N774x driver: transcripts played by a fake resource (pyvisa-sim cannot serve binary
blocks with bytes >= 0x80, which every float32 block has)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.instruments.keysight_n774x import KeysightN774x, N774xSettings
from ffzero_lab.rig import InstrumentError

from .transcript import TIMEOUT, ExpectedProtocol, float32_block

IDN = ("*IDN?", "Keysight Technologies,N7744A,MY00000001,1.2.3")
NO_ERROR = (":SYST:ERR?", '+0,"No error"')
START = [(":SENS1:FUNC:STAT LOGG,STOP", None), (":SENS1:FUNC:PAR:LOGG 3,0.0001", None),
         (":SENS1:FUNC:STAT LOGG,STAR", None), NO_ERROR]


def meter(pairs: list, **settings) -> tuple[KeysightN774x, ExpectedProtocol]:
    fake = ExpectedProtocol(pairs)
    driver = KeysightN774x(fake, "meter", N774xSettings(**settings))
    driver.sleep = lambda s: None
    return driver, fake


def test_identify() -> None:
    driver, fake = meter([IDN])
    identity = driver.identify()
    assert (identity.model, identity.channels) == ("N7744A", 4)
    fake.assert_done()


def test_configure_every_port() -> None:
    ports = [
        [f":SENS{p}:POW:UNIT 1", f":SENS{p}:POW:WAV 1550NM", f":SENS{p}:POW:RANG -20DBM", f":SENS{p}:POW:ATIM 0.0005S"]
        for p in range(1, 5)
    ]
    driver, fake = meter([IDN, *[(c, None) for port in ports for c in port], (":INIT1:CONT ON", None), NO_ERROR],
                         range_dBm=-20, averaging_time_s=5e-4)
    driver.configure()
    fake.assert_done()


def test_fetch_all_ports_as_float32_block() -> None:
    watts = [1e-6, 2.5e-7, 0.0, 3.1e-5]
    driver, fake = meter([IDN, (":FETC:POW:ALL?", float32_block(watts))])
    np.testing.assert_allclose(driver.fetch_power_W(), watts, rtol=1e-7)
    fake.assert_done()


def test_fetch_with_missing_ports_raises() -> None:
    driver, _ = meter([IDN, (":FETC:POW:ALL?", float32_block([1e-6, 2e-6]))])
    with pytest.raises(InstrumentError, match="'meter': expected 4 readings, got 2 .command ':FETC:POW:ALL\\?'"):
        driver.fetch_power_W()


def test_read_one_port() -> None:
    driver, fake = meter([(":READ2:POW?", "+1.23400000E-006")])
    assert driver.read_port_W(2) == pytest.approx(1.234e-6)
    fake.assert_done()


def test_logging_polls_until_complete_then_reads_every_port() -> None:
    samples = np.arange(12, dtype=np.float32).reshape(4, 3) * 1e-6
    driver, fake = meter([
        IDN, *START,
        (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,PROGRESS"),
        (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,COMPLETE"),
        *[(f":SENS{p}:FUNC:RES?", float32_block(samples[p - 1].tolist())) for p in range(1, 5)],
        (":SENS1:FUNC:STAT LOGG,STOP", None),
    ])
    logged = driver.log_power_W(3, averaging_time_s=1e-4)
    np.testing.assert_allclose(logged, samples, rtol=1e-7)
    assert logged.shape == (4, 3)
    fake.assert_done()


def test_logging_that_never_completes_stops_and_raises() -> None:
    clock = iter([0.0, 0.5, 2.0])
    driver, fake = meter([IDN, *START, (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,PROGRESS"),
                          (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,PROGRESS"), (":SENS1:FUNC:STAT LOGG,STOP", None)],
                         log_timeout_s=1.0)
    driver.clock = lambda: next(clock)
    with pytest.raises(InstrumentError, match="logging did not complete within 1.0 s"):
        driver.log_power_W(3, averaging_time_s=1e-4)
    fake.assert_done()


def test_an_instrument_error_names_the_commands() -> None:
    driver, _ = meter([IDN, *START[:3], (":SYST:ERR?", '-222,"Data out of range"')])
    with pytest.raises(InstrumentError, match=r"'meter': instrument reports error -222,\"Data out of range\" "
                                              r"\(command ':SENS1:FUNC:STAT LOGG,STOP; :SENS1:FUNC:PAR:LOGG 3,0.0001;"):
        driver.log_power_W(3, averaging_time_s=1e-4)


def test_timeout_names_instrument_and_resource() -> None:
    driver, _ = meter([("*IDN?", TIMEOUT)])
    with pytest.raises(
        InstrumentError, match=r"^instrument 'meter': no reply from FAKE::INSTR within 100 ms \(command '\*IDN\?'\)$"
    ):
        driver.identify()


def test_not_an_n774x() -> None:
    driver, _ = meter([("*IDN?", "Thorlabs,PM100USB,P2000000,1.4.0")])
    with pytest.raises(InstrumentError, match="not an N774x"):
        driver.identify()

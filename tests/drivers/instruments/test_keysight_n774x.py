"""Keysight N774x driver: transcripts played by a fake resource (pyvisa-sim cannot serve binary
blocks with bytes >= 0x80, which every float32 block has)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.instruments.keysight_n774x import KeysightN774x, N774xSettings
from drivers.instruments.transcript import TIMEOUT, ExpectedProtocol, float32_block
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.rig import InstrumentError, LimitError

IDN = ("*IDN?", "Keysight Technologies,N7744A,MY00000001,1.2.3")
NO_ERROR = (":SYST:ERR?", '+0,"No error"')
STOP = (":SENS1:FUNC:STAT LOGG,STOP", None)
DISARM = [STOP, (":TRIG1:INP IGN", None)]


def start(trigger: str, points: int = 3, atime: str = "0.0001") -> list:
    """The commands that start a logging run (one transfer), then the error check."""
    return [STOP, (f":TRIG1:INP {trigger}", None), (f":SENS1:FUNC:PAR:LOGG {points},{atime}", None),
            (":SENS1:FUNC:STAT LOGG,STAR", None), NO_ERROR]


START = start("IGN")


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
    driver, fake = meter([IDN, *DISARM, *[(c, None) for port in ports for c in port], (":INIT1:CONT ON", None),
                          NO_ERROR], range_dBm=-20, averaging_time_s=5e-4)
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
        *DISARM,
    ])
    logged = driver.log_power_W(3, averaging_time_s=1e-4)
    np.testing.assert_allclose(logged, samples, rtol=1e-7)
    assert logged.shape == (4, 3)
    fake.assert_done()


def test_logging_that_never_completes_stops_and_raises() -> None:
    clock = iter([0.0, 0.5, 2.0])
    driver, fake = meter([IDN, *START, (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,PROGRESS"),
                          (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,PROGRESS"), (":SENS1:FUNC:RES:IND?", "+1"),
                          *DISARM], log_timeout_s=1.0)
    driver.clock = lambda: next(clock)
    with pytest.raises(InstrumentError, match=r"logging not complete after 1 s \(LOGGING_STABILITY,PROGRESS\): "
                                              r"1 of 3 samples logged"):
        driver.log_power_W(3, averaging_time_s=1e-4)
    fake.assert_done()


def test_an_instrument_error_names_the_commands() -> None:
    driver, fake = meter([IDN, *START[:4], (":SYST:ERR?", '-222,"Data out of range"'), *DISARM])
    with pytest.raises(InstrumentError, match=r"'meter': instrument reports error -222,\"Data out of range\" "
                                              r"\(command ':SENS1:FUNC:STAT LOGG,STOP; :TRIG1:INP IGN; "
                                              r":SENS1:FUNC:PAR:LOGG 3,0.0001;"):
        driver.log_power_W(3, averaging_time_s=1e-4)
    fake.assert_done()  # and disarmed


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


# -- logging on an external trigger (one sample per sweep clock edge) -------------------------------
ARM = start("SME", points=3, atime="1e-05")
SAMPLES = np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(1e-6) + np.float32(1e-7)  # (points, ports)
RESULTS = [(f":SENS{p}:FUNC:RES?", float32_block(SAMPLES[:, p - 1].tolist())) for p in range(1, 5)]
COMPLETE = (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,COMPLETE")
PROGRESS = (":SENS1:FUNC:STAT?", "LOGGING_STABILITY,PROGRESS")


def test_arm_fetch_disarm_command_traffic() -> None:
    driver, fake = meter([IDN, *ARM, PROGRESS, COMPLETE, *RESULTS, *DISARM])
    driver.arm_log(3, 1e-5)
    logged = driver.fetch_log_W(timeout_s=1.0)
    assert logged.shape == (3, 4) and logged.dtype == np.float64
    np.testing.assert_array_equal(logged, SAMPLES)  # float32 on the wire, exactly
    driver.disarm()
    fake.assert_done()


def test_the_arm_commands_leave_in_one_transfer() -> None:
    driver, fake = meter([IDN, *ARM])
    sent: list[bytes] = []
    write_raw = fake.write_raw
    fake.write_raw = lambda data: (sent.append(data), write_raw(data))  # type: ignore[method-assign]
    driver.arm_log(3, 1e-5)
    assert sent == [b":SENS1:FUNC:STAT LOGG,STOP\n:TRIG1:INP SME\n:SENS1:FUNC:PAR:LOGG 3,1e-05\n"
                    b":SENS1:FUNC:STAT LOGG,STAR\n"]
    fake.assert_done()


@pytest.mark.parametrize(("points", "averaging_s", "error", "message"), [
    (0, 1e-5, LimitError, r"^instrument 'meter': 0 samples is below the limit logging points per port = 1 samples; "
                          r"nothing was written$"),
    (1_000_001, 1e-5, LimitError, r"^instrument 'meter': 1e\+06 samples is above the limit logging points per port "
                                  r"= 1e\+06 samples; nothing was written$"),
    (10, 5e-7, LimitError, r"^instrument 'meter': 5e-07 s is below the limit logging averaging time = 1e-06 s"),
    (10, 11.0, LimitError, r"^instrument 'meter': 11 s is above the limit logging averaging time = 10 s"),
    (2.5, 1e-5, ConfigError, r"^instrument 'meter': points: logging points must be a whole number, not 2.5"),
    (True, 1e-5, ConfigError, r"^instrument 'meter': points: logging points must be a whole number, not True"),
    ("3", 1e-5, ConfigError, r"^instrument 'meter': points: "),
    (10, float("nan"), ConfigError, r"^instrument 'meter': averaging_s: .* not nan; nothing was sent$"),
    (10, float("inf"), ConfigError, r"^instrument 'meter': averaging_s: .* not inf"),
    (10, None, ConfigError, r"^instrument 'meter': averaging_s: "),
])
def test_a_bad_request_is_refused_before_a_byte_is_sent(points, averaging_s, error, message) -> None:
    driver, fake = meter([])
    with pytest.raises(error, match=message) as caught:
        driver.arm_log(points, averaging_s)
    assert "\n" not in str(caught.value)
    with pytest.raises(error):
        driver.logging_instrument_time_s(points, averaging_s)
    if averaging_s is not None:  # None: log_power_W takes the settings' averaging time
        with pytest.raises(error):
            driver.log_power_W(points, averaging_s)
    fake.assert_done()  # the transcript is empty: not even *IDN? went out


def test_the_limits_themselves_are_accepted() -> None:
    for points, atime, text in [(1, 1e-6, "1e-06"), (1_000_000, 10.0, "10")]:
        driver, fake = meter([IDN, *start("SME", points, text)])
        driver.arm_log(points, atime)
        fake.assert_done()


def test_a_run_missing_triggers_times_out_in_one_line_naming_the_instrument() -> None:
    clock = iter([0.0, 0.4, 0.8, 1.2])
    driver, fake = meter([IDN, *ARM, PROGRESS, PROGRESS, PROGRESS, (":SENS1:FUNC:RES:IND?", "+2"), *DISARM],
                         poll_interval_s=0.5)
    pauses: list[float] = []
    driver.clock, driver.sleep = (lambda: next(clock)), pauses.append
    driver.arm_log(3, 1e-5)
    with pytest.raises(InstrumentError) as caught:
        driver.fetch_log_W(timeout_s=1.0)
    assert str(caught.value) == (
        "instrument 'meter': logging not complete after 1 s (LOGGING_STABILITY,PROGRESS): 2 of 3 triggers arrived; "
        "the run is stopped (command ':SENS1:FUNC:STAT?')")
    assert pauses == [0.5, pytest.approx(0.2)]  # the last pause ends at the deadline
    fake.assert_done()  # and it was disarmed
    driver.close()  # nothing more is sent: it is no longer armed


def test_a_meter_that_cannot_count_its_triggers_still_times_out_in_one_line() -> None:
    clock = iter([0.0, 2.0])
    driver, fake = meter([IDN, *ARM, PROGRESS, (":SENS1:FUNC:RES:IND?", TIMEOUT), *DISARM])
    driver.clock = lambda: next(clock)
    driver.arm_log(3, 1e-5)
    with pytest.raises(InstrumentError, match=r"^instrument 'meter': logging not complete after 1 s .*: "
                                              r"fewer than 3 triggers arrived; the run is stopped"):
        driver.fetch_log_W(timeout_s=1.0)
    fake.assert_done()


def test_a_run_stopped_behind_the_drivers_back_fails_at_once() -> None:
    driver, fake = meter([IDN, *ARM, (":SENS1:FUNC:STAT?", "NONE,COMPLETE"), *DISARM])
    driver.arm_log(3, 1e-5)
    with pytest.raises(InstrumentError, match=r"no logging run on the meter \(NONE,COMPLETE\)"):
        driver.fetch_log_W(timeout_s=10.0)
    fake.assert_done()


def test_fetch_without_arm_sends_nothing() -> None:
    driver, fake = meter([])
    with pytest.raises(InstrumentError, match=r"^instrument 'meter': no logging run is armed \(arm_log first\)"):
        driver.fetch_log_W(timeout_s=1.0)
    with pytest.raises(ConfigError, match="timeout"):
        driver.fetch_log_W(timeout_s=float("nan"))
    fake.assert_done()


def test_an_error_on_arming_disarms_and_names_the_commands() -> None:
    driver, fake = meter([IDN, *ARM[:4], (":SYST:ERR?", '-221,"Settings conflict"'), *DISARM])
    with pytest.raises(InstrumentError, match=r"instrument reports error -221.*:TRIG1:INP SME"):
        driver.arm_log(3, 1e-5)
    fake.assert_done()


@pytest.mark.parametrize(("port2", "message"), [
    (b"junk\n", r"malformed binary block from FAKE::INSTR: Could not find hash sign"),
    (b"#216abcd\n", r"malformed binary block .*: Binary data is incomplete"),  # the header promises more
    (b"#3abc\n", r"malformed binary block .*: invalid literal"),
    (float32_block([1e-6, 2e-6]), r"channel 2: expected 3 logged samples, got 2"),
    (float32_block([1e-6, float("nan"), 2e-6]), r"channel 2: logged sample 1 is nan \(1 not finite\)"),
])
def test_a_junk_or_truncated_block_is_refused_in_one_line(port2: bytes, message: str) -> None:
    driver, _ = meter([IDN, *ARM, COMPLETE, RESULTS[0], (":SENS2:FUNC:RES?", port2)])
    driver.arm_log(3, 1e-5)
    with pytest.raises(InstrumentError, match=message) as caught:
        driver.fetch_log_W(timeout_s=1.0)
    assert str(caught.value).startswith("instrument 'meter'") and "\n" not in str(caught.value)
    assert "':SENS2:FUNC:RES?'" in str(caught.value)


def test_close_and_the_safe_state_disarm_an_armed_meter() -> None:
    driver, fake = meter([IDN, *ARM, *DISARM])
    driver.arm_log(3, 1e-5)
    driver.close()
    fake.assert_done()
    driver, fake = meter([IDN, *ARM, *DISARM])
    driver.arm_log(3, 1e-5)
    driver.safe_state()
    driver.safe_state()  # once is enough
    fake.assert_done()


def test_close_still_closes_when_the_disarm_fails() -> None:
    driver, fake = meter([IDN, *ARM])
    closed: list[bool] = []
    fake.close = lambda: closed.append(True)  # type: ignore[method-assign]
    driver.arm_log(3, 1e-5)
    fake.write_raw = lambda data: (_ for _ in ()).throw(OSError("link down"))  # type: ignore[method-assign]
    driver.close()
    assert closed == [True]


def test_the_instrument_time_of_a_run() -> None:
    driver, _ = meter([IDN], bus_rate_B_per_s=1e6)
    block = 2 + 4 + 4000 + 1  # "#44000" + 1000 float32 + newline
    assert driver.logging_instrument_time_s(1000, 2e-5) == pytest.approx(1000 * 2e-5 + 4 * block / 1e6)
    assert driver.log_transfer_s(1000) == pytest.approx(4 * block / 1e6)


def test_the_driver_declares_the_logging_capability() -> None:
    from ffzero_lab.rig.driver import LoggingPowerMeter

    assert KeysightN774x.logs_on_trigger is True
    missing = [name for name in ("arm_log", "fetch_log_W", "disarm", "logging_instrument_time_s", "log_points_max",
                                 "averaging_range_s", "configure", "fetch_power_W", "identify", "close")
               if not hasattr(KeysightN774x, name)]
    assert not missing
    protocol = {name for name in vars(LoggingPowerMeter) if not name.startswith("_")}
    protocol |= set(LoggingPowerMeter.__annotations__)
    assert protocol <= set(dir(KeysightN774x))


def test_a_timeout_on_a_broken_link_still_says_what_happened_in_one_line() -> None:
    clock = iter([0.0, 2.0])
    driver, fake = meter([IDN, *ARM, PROGRESS, (":SENS1:FUNC:RES:IND?", "+0")])
    driver.clock = lambda: next(clock)
    driver.arm_log(3, 1e-5)
    fake.write_raw = lambda data: (_ for _ in ()).throw(OSError("link down"))  # type: ignore[method-assign]
    with pytest.raises(InstrumentError, match=r"^instrument 'meter': logging not complete after 1 s .*: 0 of 3 "
                                              r"triggers arrived; and it could not be stopped: I/O error on "
                                              r"FAKE::INSTR: link down \(command ':SENS1:FUNC:STAT\?'\)$"):
        driver.fetch_log_W(timeout_s=1.0)


def test_the_fetched_array_is_c_contiguous_points_by_ports() -> None:
    driver, _ = meter([IDN, *ARM, COMPLETE, *RESULTS])
    driver.arm_log(3, 1e-5)
    logged = driver.fetch_log_W(timeout_s=1.0)
    assert logged.flags.c_contiguous and logged.shape == (3, 4)
    with pytest.raises(ConfigError, match="timeout"):
        driver.fetch_log_W(timeout_s=True)

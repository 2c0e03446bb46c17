"""N774x logging on an external trigger: the emulated meter's state machine, and the real driver
against it over a real loopback socket (pyvisa-py ``TCPIP::127.0.0.1::<port>::SOCKET``).

Every server binds 127.0.0.1 on an OS-chosen port and is stopped by its fixture.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import pyvisa
from pyvisa.util import from_ieee_block

from drivers.emulated.n774x import N774xEmulator
from drivers.emulated.server import Fault, LineServer
from drivers.instruments.keysight_n774x import KeysightN774x, N774xSettings
from ffzero_lab.rig import InstrumentError

PORTS = 4
#: What the meter reads without a trigger (``:FETC``, ``:TRIG NODEA``, runs on its own clock), W.
NOW_W = np.array([1e-6, 2e-6, 3e-6, 4e-6])


def now(samples: int) -> np.ndarray:
    """``read`` of the emulator: ``(ports, samples)`` W."""
    return np.repeat(NOW_W[:, None], samples, axis=1)


def sweep_powers(n: int, seed: int = 0) -> np.ndarray:
    """``(n, ports)`` powers over four decades; the first rows' float32 hold the bytes 0x0A (the
    line terminator) and >= 0x80, so the block must be read by its length, not by lines."""
    powers = 10.0 ** np.random.default_rng(seed).uniform(-7, -3, (n, PORTS))
    crafted = np.array([0x3580000A, 0x358A0A0A, 0x0A0A80B5 & 0x7FFFFFFF, 0x36FF0AFF], dtype="<u4").view("<f4")
    powers[0] = crafted
    return powers


class Clock:
    """A clock the test moves, s."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def decode(block: bytes) -> np.ndarray:
    """The float32 values of an IEEE-488.2 block."""
    return np.asarray(from_ieee_block(block, "f", False), dtype=np.float32)


def errors(meter: N774xEmulator) -> list[bytes]:
    """Every queued error, in order (then the queue is empty)."""
    out = []
    while (reply := meter.handle(":SYST:ERR?")[0]) != b'+0,"No error"\n':
        out.append(reply.strip())
    return out


# -- the emulated meter's state machine --------------------------------------------------------------
def test_sme_logs_one_sample_per_trigger_and_completes_after_points() -> None:
    meter = N774xEmulator(now)
    for line in (":TRIG1:INP SME", ":SENS1:FUNC:PAR:LOGG 5,1e-05", ":SENS1:FUNC:STAT LOGG,STAR"):
        assert meter.handle(line) == []
    assert meter.handle(":SENS1:FUNC:STAT?") == [b"LOGGING_STABILITY,PROGRESS\n"]
    powers = sweep_powers(7)
    assert meter.trigger_samples(powers[:3]) == 3
    assert meter.handle(":SENS1:FUNC:RES:IND?") == [b"+3\n"]
    assert meter.trigger_samples(powers[3:]) == 2  # the run has its 5; later edges are ignored
    assert (meter.state, meter.logged, meter.triggers) == ("COMPLETE", 5, 7)
    assert meter.handle(":SENS1:FUNC:STAT?") == [b"LOGGING_STABILITY,COMPLETE\n"]
    block = meter.handle(":SENS3:FUNC:RES?")[0]
    assert block.startswith(b"#220") and block.endswith(b"\n") and len(block) == 4 + 20 + 1
    np.testing.assert_array_equal(decode(block), powers[:5, 2].astype("<f4"))
    assert errors(meter) == []


def test_results_before_complete_are_refused_through_the_error_queue() -> None:
    meter = N774xEmulator(now)
    assert meter.handle(":SENS1:FUNC:RES?") == []  # nothing logged yet: no reply at all
    meter.handle(":TRIG1:INP SME")
    meter.handle(":SENS1:FUNC:PAR:LOGG 2,1e-05")
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")
    meter.trigger_samples(sweep_powers(1))
    assert meter.handle(":SENS2:FUNC:RES?") == []
    assert errors(meter) == [b'-200,"Execution error;logging not complete"'] * 2
    meter.handle(":SENS1:FUNC:STAT LOGG,STOP")  # stopped before complete: nothing to read
    assert meter.handle(":SENS1:FUNC:STAT?") == [b"NONE,COMPLETE\n"]
    assert meter.handle(":SENS1:FUNC:RES?") == [] and len(errors(meter)) == 1


def test_a_complete_run_stays_readable_after_stop_until_the_next_start() -> None:
    meter = N774xEmulator(now)
    meter.handle(":TRIG1:INP SME")
    meter.handle(":SENS1:FUNC:PAR:LOGG 1,1e-05")
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")
    meter.trigger_samples(np.full((1, PORTS), 5e-6))
    meter.handle(":SENS1:FUNC:STAT LOGG,STOP")
    assert len(meter.handle(":SENS1:FUNC:RES?")) == 1
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")
    assert meter.handle(":SENS1:FUNC:RES?") == []


def test_settings_are_fixed_while_a_run_is_armed() -> None:
    meter = N774xEmulator(now)
    meter.handle(":SENS2:POW:RANG -20DBM")
    meter.handle(":TRIG1:INP SME")
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")
    for line in (":SENS2:POW:RANG 0DBM", ":SENS2:POW:RANG:AUTO 1", ":SENS2:POW:ATIM 0.1S", ":TRIG1:INP IGN",
                 ":SENS1:FUNC:PAR:LOGG 10,1e-05"):
        assert meter.handle(line) == []
    assert errors(meter) == [b'-221,"Settings conflict;logging in progress"'] * 5
    assert meter.sense == {(2, "RANG"): "-20DBM"} and meter.trigger_input == "SME" and meter.logging == (1, 1e-3)
    meter.handle(":SENS1:FUNC:STAT LOGG,STOP")
    meter.handle(":TRIG1:INP IGN")
    meter.handle(":SENS2:POW:RANG 0DBM")
    assert errors(meter) == [] and meter.sense[(2, "RANG")] == "0DBM" and meter.trigger_input == "IGN"


@pytest.mark.parametrize("line", [":SENS1:FUNC:PAR:LOGG 1000001,1e-05", ":SENS1:FUNC:PAR:LOGG 0,1e-05",
                                  ":SENS1:FUNC:PAR:LOGG 10,1e-07", ":SENS1:FUNC:PAR:LOGG 10,11"])
def test_logging_parameters_beyond_the_meter_are_refused(line: str) -> None:
    meter = N774xEmulator(now)
    assert meter.handle(line) == []
    assert errors(meter) == [b'-222,"Data out of range"'] and meter.logging == (1, 1e-3)


def test_a_million_samples_per_port_is_the_cap() -> None:
    meter = N774xEmulator(now)
    meter.handle(":SENS1:FUNC:PAR:LOGG 1000000,1e-06")
    meter.handle(":SENS1:FUNC:PAR:LOGG 1000,100US")
    assert errors(meter) == [] and meter.logging == (1000, pytest.approx(1e-4))


def test_edges_are_ignored_unless_a_run_is_armed_on_sme() -> None:
    meter = N774xEmulator(now)
    assert meter.trigger_samples(sweep_powers(3)) == 0  # no run
    meter.handle(":SENS1:FUNC:STAT LOGG,STOP")
    meter.handle(":TRIG1:INP SME")
    assert meter.trigger_samples(sweep_powers(3)) == 0  # a trigger input, but no run
    assert meter.triggers == 6 and meter.state == "IDLE"
    with pytest.raises(ValueError, match=r"powers_W must be \(n, 4\), not \(3,\)"):
        meter.trigger_samples(np.zeros(3))


def test_edges_during_an_averaging_are_lost() -> None:
    meter = N774xEmulator(now)
    meter.handle(":TRIG1:INP SME")
    meter.handle(":SENS1:FUNC:PAR:LOGG 4,1e-05")
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")
    powers = sweep_powers(10)
    assert meter.trigger_samples(powers, period_s=4e-6) == 4  # every third edge logs
    np.testing.assert_array_equal(meter._result, powers[[0, 3, 6, 9]].astype("<f4"))


def test_a_software_trigger_logs_what_the_ports_see_now() -> None:
    meter = N774xEmulator(now)
    meter.handle(":TRIG1:INP SME")
    meter.handle(":SENS1:FUNC:PAR:LOGG 2,1e-05")
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")
    meter.handle(":TRIG NODEA")
    assert meter.state == "ARMED" and meter.logged == 1
    meter.handle(":TRIG NODEA")
    assert meter.state == "COMPLETE"
    np.testing.assert_array_equal(decode(meter.handle(":SENS4:FUNC:RES?")[0]), np.float32([4e-6] * 2))


def test_runs_on_the_meters_own_clock() -> None:
    clock = Clock()
    meter = N774xEmulator(now, clock=clock)
    meter.handle(":SENS1:FUNC:PAR:LOGG 10,0.001")
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")  # IGN: it starts at once
    clock.t = 0.0045
    assert meter.handle(":SENS1:FUNC:RES:IND?") == [b"+4\n"]
    clock.t = 0.010
    assert meter.handle(":SENS1:FUNC:STAT?") == [b"LOGGING_STABILITY,COMPLETE\n"]
    meter.handle(":TRIG1:INP CME")  # CME: the first edge starts the whole run
    meter.handle(":SENS1:FUNC:STAT LOGG,STAR")
    clock.t = 1.0
    assert meter.handle(":SENS1:FUNC:STAT?") == [b"LOGGING_STABILITY,PROGRESS\n"]
    assert meter.trigger_samples(sweep_powers(1)) == 0 and meter.state == "RUNNING"
    clock.t = 1.010
    assert meter.handle(":SENS1:FUNC:STAT?") == [b"LOGGING_STABILITY,COMPLETE\n"]
    assert meter.handle(":TRIG1:INP?") == [b"CME\n"]


# -- the driver against the emulated meter over a real socket -------------------------------------------
@dataclass
class Bench:
    emulator: N774xEmulator
    server: LineServer
    driver: KeysightN774x


def served(bench: Bench) -> Bench:
    """``bench`` after the server has executed every command sent (a query answers in order)."""
    bench.driver.query("*IDN?")
    return bench


@pytest.fixture
def bench() -> Iterator[Bench]:
    emulator = N774xEmulator(now)
    server = LineServer("meter", emulator.handle)
    server.start()
    rm = pyvisa.ResourceManager("@py")
    try:
        resource = rm.open_resource(server.resource, timeout=2000, **KeysightN774x.resource_options)
        driver = KeysightN774x(resource, "meter", N774xSettings(poll_interval_s=0.001))
        yield Bench(emulator, server, driver)
        try:
            driver.close()
        except pyvisa.errors.InvalidSession:  # the test closed it
            pass
    finally:
        rm.close()
        server.stop()


def test_the_driver_reads_a_triggered_sweep_in_one_block_per_port(bench: Bench) -> None:
    powers = sweep_powers(1000)
    wire = powers.astype("<f4").tobytes()
    assert max(wire) >= 0x80 and b"\n" in wire  # the block is binary, terminator bytes inside
    bench.driver.configure()
    bench.driver.arm_log(1000, 1e-6)
    assert (bench.emulator.state, bench.emulator.trigger_input, bench.emulator.logging) == ("ARMED", "SME",
                                                                                           (1000, 1e-6))
    assert bench.emulator.trigger_samples(powers[:600]) == 600  # the sweep's sample clock, in two bursts
    assert bench.emulator.trigger_samples(powers[600:]) == 400
    commands = bench.server.commands
    logged = bench.driver.fetch_log_W(timeout_s=5.0)
    assert bench.server.commands - commands == 1 + PORTS  # one status poll, one block per port
    assert logged.shape == (1000, PORTS) and logged.dtype == np.float64
    np.testing.assert_array_equal(logged, powers.astype(np.float32))  # equal to float32 precision
    np.testing.assert_allclose(logged, powers, rtol=2 ** -24)
    bench.driver.disarm()
    assert (served(bench).emulator.state, bench.emulator.trigger_input) == ("IDLE", "IGN")
    assert bench.emulator.errors == []


def test_missing_triggers_time_out_in_one_line_and_leave_the_meter_disarmed(bench: Bench) -> None:
    bench.driver.arm_log(10, 1e-5)
    bench.emulator.trigger_samples(sweep_powers(4))
    with pytest.raises(InstrumentError) as caught:
        bench.driver.fetch_log_W(timeout_s=0.05)
    assert str(caught.value) == (
        "instrument 'meter': logging not complete after 0.05 s (LOGGING_STABILITY,PROGRESS): 4 of 10 triggers "
        "arrived; the run is stopped (command ':SENS1:FUNC:STAT?')")
    assert (served(bench).emulator.state, bench.emulator.trigger_input) == ("IDLE", "IGN")
    bench.driver.arm_log(2, 1e-5)  # the meter takes the next run
    bench.emulator.trigger_samples(sweep_powers(2, seed=1))
    np.testing.assert_array_equal(bench.driver.fetch_log_W(1.0), sweep_powers(2, seed=1).astype(np.float32))


def test_close_disarms_the_meter(bench: Bench) -> None:
    bench.driver.arm_log(10, 1e-5)
    commands = bench.server.commands
    bench.driver.close()
    deadline = time.monotonic() + 10.0  # a wait for the server's thread, not a timing assertion
    while bench.server.commands < commands + 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert (bench.emulator.state, bench.emulator.trigger_input) == ("IDLE", "IGN")
    assert bench.emulator.trigger_samples(sweep_powers(10)) == 0


def test_software_triggers_over_the_socket(bench: Bench) -> None:
    bench.driver.arm_log(3, 1e-5)
    for _ in range(3):
        bench.driver.write(":TRIG NODEA")
    np.testing.assert_array_equal(bench.driver.fetch_log_W(1.0), now(3).T.astype(np.float32))


def test_the_meter_on_its_own_clock_over_the_socket(bench: Bench) -> None:
    np.testing.assert_array_equal(bench.driver.log_power_W(5, averaging_time_s=1e-4), now(5).astype(np.float32))
    assert bench.emulator.trigger_input == "IGN" and bench.emulator.errors == []


@pytest.mark.parametrize(("reply", "message"), [
    ("junk", r"malformed binary block from TCPIP0::127.0.0.1::\d+::SOCKET: Could not find hash sign .*"),
    ("#18abcd", r"no reply from TCPIP0::127.0.0.1::\d+::SOCKET within 200 ms"),  # 8 bytes promised, 4 came
])
def test_a_junk_or_truncated_block_over_the_socket_is_refused_in_one_line(bench: Bench, reply: str,
                                                                          message: str) -> None:
    bench.server.inject(Fault(":SENS2:FUNC:RES?", reply=reply, count=1))
    bench.driver.arm_log(2, 1e-5)
    bench.emulator.trigger_samples(sweep_powers(2))
    bench.driver.resource.timeout = 200
    with pytest.raises(InstrumentError, match=rf"^instrument 'meter' channel 2: {message} "
                                              r"\(command ':SENS2:FUNC:RES\?'\)$") as caught:
        bench.driver.fetch_log_W(1.0)
    assert "\n" not in str(caught.value)

"""The UNMODIFIED ``nidaqmx`` library, over gRPC, against the emulated NI-DAQmx device server.

Every server binds 127.0.0.1 on an OS-chosen port and is stopped by its fixture or test (the
subprocess test sends SIGTERM and waits for the process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import nidaqmx
import numpy as np
import pytest
from nidaqmx.constants import READ_ALL_AVAILABLE, AcquisitionType, RegenerationMode, TaskMode, TriggerType
from nidaqmx.error_codes import DAQmxErrors
from nidaqmx.errors import DaqError, DaqReadError, DaqWriteError
from nidaqmx.stream_readers import AnalogMultiChannelReader
from nidaqmx.stream_writers import AnalogMultiChannelWriter

from drivers.emulated.daqmx import (
    IMPLEMENTED_RPCS,
    DaqmxServer,
    DeviceSpec,
    SumOfSquaresModel,
    serve_daqmx,
)

ROOT = Path(__file__).resolve().parents[3]

N = 100  # samples per channel in a table
RATE = 10_000.0  # samples/s
AI_NAMES = ("Dev2/ai0", "Dev2/ai1")


def bench_devices(**ao_settings: object) -> dict[str, DeviceSpec]:
    """A 4-channel AO card (Dev1) and a 2-channel AI card (Dev2)."""
    return {"Dev1": DeviceSpec("ao", 4, **ao_settings), "Dev2": DeviceSpec("ai", 2)}  # type: ignore[arg-type]


MODEL = SumOfSquaresModel({0: (0, 1), 1: (1, 2, 3)}, gain=0.05, offset=0.01)


@pytest.fixture
def server() -> Iterator[DaqmxServer]:
    with serve_daqmx(bench_devices(), MODEL, max_wall_wait_s=10.0) as srv:
        yield srv


@pytest.fixture
def channel(server: DaqmxServer) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(server.address)
    yield ch
    ch.close()


def task(channel: grpc.Channel, name: str) -> nidaqmx.Task:
    """A task on the server; the session name must equal the task name."""
    return nidaqmx.Task(name, grpc_options=nidaqmx.GrpcSessionOptions(channel, name))


def configure_pair(
    ao: nidaqmx.Task,
    ai: nidaqmx.Task,
    n: int = N,
    rate: float = RATE,
    ai_rate: float | None = None,
    share_clock: bool = True,
) -> None:
    """AO Dev1/ao0:3 finite, no regeneration; AI Dev2/ai0:1 on the AO clock and start trigger."""
    ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:3", min_val=-10.0, max_val=10.0)
    ai.ai_channels.add_ai_voltage_chan("Dev2/ai0:1", min_val=-10.0, max_val=10.0)
    ao.timing.cfg_samp_clk_timing(rate, sample_mode=AcquisitionType.FINITE, samps_per_chan=n)
    ao.out_stream.regen_mode = RegenerationMode.DONT_ALLOW_REGENERATION
    ai.timing.cfg_samp_clk_timing(
        ai_rate or rate,
        source="/Dev1/ao/SampleClock" if share_clock else "",
        sample_mode=AcquisitionType.FINITE,
        samps_per_chan=n,
    )
    ai.triggers.start_trigger.cfg_dig_edge_start_trig("/Dev1/ao/StartTrigger")


def table(n: int = N, seed: int = 0) -> np.ndarray:
    """AO volts, shape (4, n)."""
    return np.random.default_rng(seed).uniform(-3.0, 3.0, (4, n))


def expected(ao_table: np.ndarray) -> np.ndarray:
    """What the model gives for a (4, n) AO table, shape (2, n) volts."""
    return MODEL(ao_table, AI_NAMES)


# --- the sweep ----------------------------------------------------------------------------------


def test_shared_clock_sweep_reads_the_model_and_advances_virtual_time(
    server: DaqmxServer, channel: grpc.Channel
) -> None:
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai)
        t = table()
        assert ao.write(t, auto_start=False) == N
        ai.start()  # armed: waits for /Dev1/ao/StartTrigger
        assert server.bench_time_s == 0.0
        assert not ai.is_task_done()
        ao.start()
        ao.wait_until_done(timeout=5.0)
        ai.wait_until_done(timeout=5.0)
        assert ao.is_task_done() and ai.is_task_done()
        data = np.asarray(ai.read(number_of_samples_per_channel=N), dtype=np.float64)
        assert data.shape == (2, N)
        np.testing.assert_array_equal(data, expected(t))
        assert server.bench_time_s == pytest.approx(N / RATE)
        assert server.emulator.device_time_s("Dev1") == pytest.approx(N / RATE)
        assert server.emulator.device_time_s("Dev2") == pytest.approx(N / RATE)
        # Property read-backs the driver makes.
        assert ao.timing.samp_clk_rate == RATE
        assert ai.timing.samp_clk_src == "/Dev1/ao/SampleClock"
        assert ao.timing.samp_quant_samp_per_chan == N
        assert ao.out_stream.regen_mode == RegenerationMode.DONT_ALLOW_REGENERATION
        assert ai.triggers.start_trigger.dig_edge_src == "/Dev1/ao/StartTrigger"
        # A finite AO holds its last sample afterwards.
        np.testing.assert_array_equal(server.emulator.ao_hold_volts(), t[:, -1])
        ai.stop()
        ao.stop()

        # The next sweep on the same tasks: stop, write, start again.
        t2 = table(seed=1)
        ao.write(t2, auto_start=False)
        ai.start()
        ao.start()
        ai.wait_until_done(timeout=5.0)
        np.testing.assert_array_equal(np.asarray(ai.read(number_of_samples_per_channel=N)), expected(t2))
        assert server.bench_time_s == pytest.approx(2 * N / RATE)
        ai.stop()
        ao.stop()
    assert server.emulator.task_names() == []
    calls = server.rpc_calls
    assert not server.unimplemented_calls, calls
    assert set(calls) <= set(IMPLEMENTED_RPCS)
    for rpc in (
        "CreateTask",
        "CfgSampClkTiming",
        "CfgDigEdgeStartTrig",
        "WriteAnalogF64",
        "StartTask",
        "WaitUntilTaskDone",
        "ReadAnalogF64",
        "StopTask",
        "ClearTask",
        "SetWriteAttributeInt32",
    ):
        assert calls[rpc] >= 1, rpc


def test_ai_on_its_own_clock_sees_the_ao_held_between_updates(
    server: DaqmxServer, channel: grpc.Channel
) -> None:
    """AI at twice the AO rate, started by the AO start trigger: sample j sees AO sample j // 2."""
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai, n=N, rate=RATE, ai_rate=2 * RATE, share_clock=False)
        ai.timing.cfg_samp_clk_timing(2 * RATE, sample_mode=AcquisitionType.FINITE, samps_per_chan=2 * N)
        t = table()
        ao.write(t)
        ai.start()
        ao.start()
        ai.wait_until_done(timeout=5.0)
        data = np.asarray(ai.read(number_of_samples_per_channel=READ_ALL_AVAILABLE))
        np.testing.assert_array_equal(data, expected(np.repeat(t, 2, axis=1)))
        assert server.bench_time_s == pytest.approx(N / RATE)


def test_shared_clock_ticks_stay_exact_after_a_long_virtual_time(
    server: DaqmxServer, channel: grpc.Channel
) -> None:
    """Hours of bench time must not shift the AI-sample-to-AO-sample mapping by a tick."""
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai, n=N, rate=1e6)
        t = table()
        ao.write(t)
        ai.start()
        ao.start()
        ai.wait_until_done(timeout=5.0)
        ai.read(number_of_samples_per_channel=N)
        ai.stop()
        ao.stop()
        server.emulator.advance(5 * 3600.0 + 1.234567)  # five hours of idle bench
        t0 = server.bench_time_s
        ao.write(t)
        ai.start()
        ao.start()
        np.testing.assert_array_equal(np.asarray(ai.read(number_of_samples_per_channel=N)), expected(t))
        assert server.bench_time_s - t0 == pytest.approx(N / 1e6)


def test_reads_over_4_mib_need_the_channel_option(server: DaqmxServer) -> None:
    """grpc's client default caps received messages at 4 MiB; NI's server (and this one) does not."""
    n = 300_000  # 2 AI channels x 300k x 8 B = 4.8 MB in one ReadAnalogF64 response
    opts = [("grpc.max_receive_message_length", -1)]
    for options, ok in (((), False), (opts, True)):
        ch = grpc.insecure_channel(server.address, options=list(options))
        try:
            with task(ch, "ao") as ao, task(ch, "ai") as ai:
                configure_pair(ao, ai, n=n, rate=1e6)
                t = np.zeros((4, n))
                ao.write(t)  # 9.6 MB upstream: the client sends without a cap
                ai.start()
                ao.start()
                if ok:
                    assert np.asarray(ai.read(number_of_samples_per_channel=n)).shape == (2, n)
                else:
                    with pytest.raises(nidaqmx.errors.RpcError) as info:
                        ai.read(number_of_samples_per_channel=n)
                    assert info.value.rpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            ch.close()


def test_property_read_backs(server: DaqmxServer, channel: grpc.Channel) -> None:
    """Every property getter the servicer implements, through nidaqmx's own properties."""
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai)
        assert ao.number_of_channels == 4 and ai.channel_names == ["Dev2/ai0", "Dev2/ai1"]
        assert ao.ao_channels["Dev1/ao2"].physical_channel.name == "Dev1/ao2"
        assert ao.ao_channels["Dev1/ao2"].ao_max == 10.0 and ai.ai_channels["Dev2/ai1"].ai_min == -10.0
        assert ao.timing.samp_quant_samp_mode == AcquisitionType.FINITE
        assert ao.timing.samp_clk_max_rate == 1e6 and ai.timing.samp_clk_max_rate == 2e6
        assert ai.timing.samp_clk_term == "/Dev2/ai/SampleClock"
        assert ai.triggers.start_trigger.trig_type == TriggerType.DIGITAL_EDGE
        assert ao.triggers.start_trigger.trig_type == TriggerType.NONE
        assert ao.triggers.start_trigger.term == "/Dev1/ao/StartTrigger"
        assert ao.out_stream.space_avail == 4_194_304
        ao.write(table())
        assert ao.out_stream.space_avail == 4_194_304 - N and ao.out_stream.curr_write_pos == N
        assert ai.in_stream.num_chans == 2 and not ai.in_stream.read_all_avail_samp
        ai.start()
        assert ai.in_stream.avail_samp_per_chan == 0
        ao.start()
        assert ao.out_stream.total_samp_per_chan_generated == N
        assert ai.in_stream.avail_samp_per_chan == N and ai.in_stream.total_samp_per_chan_acquired == N
        ai.read(number_of_samples_per_channel=40)
        assert ai.in_stream.curr_read_pos == 40 and ai.in_stream.avail_samp_per_chan == N - 40
        # The onboard clock divides a 100 MHz timebase: 300 kS/s is really 1e8 / 333 S/s.
        ao.stop()
        ao.timing.cfg_samp_clk_timing(3e5, samps_per_chan=N)
        assert ao.timing.samp_clk_rate == pytest.approx(1e8 / 333)
    assert not server.unimplemented_calls
    assert set(server.rpc_calls) <= set(IMPLEMENTED_RPCS)


def test_driver_sweep_snippet_from_the_docs() -> None:
    """The driver code of docs/instruments.md, in substance: 64 heaters, 8 photodiodes, S*B samples."""
    S, B, SETTLE, rate = 32, 16, 4, 1e6  # settings, samples per setting, samples discarded, S/s
    n = S * B
    with serve_daqmx() as srv:  # default bench: Dev1 = 64 AO, Dev2 = 8 AI
        channel = grpc.insecure_channel(srv.address, options=[("grpc.max_receive_message_length", -1)])
        ao = nidaqmx.Task("bench-ao", grpc_options=nidaqmx.GrpcSessionOptions(channel, "bench-ao"))
        ai = nidaqmx.Task("bench-ai", grpc_options=nidaqmx.GrpcSessionOptions(channel, "bench-ai"))
        try:
            ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:63", min_val=0.0, max_val=10.0)
            ai.ai_channels.add_ai_voltage_chan("Dev2/ai0:7", min_val=-10.0, max_val=10.0)
            ao.timing.cfg_samp_clk_timing(rate, sample_mode=AcquisitionType.FINITE, samps_per_chan=n)
            ao.out_stream.regen_mode = RegenerationMode.DONT_ALLOW_REGENERATION
            ai.timing.cfg_samp_clk_timing(
                rate, source="/Dev1/ao/SampleClock", sample_mode=AcquisitionType.FINITE, samps_per_chan=n
            )
            ai.triggers.start_trigger.cfg_dig_edge_start_trig("/Dev1/ao/StartTrigger")
            actual_rate = ao.timing.samp_clk_rate
            ao.control(TaskMode.TASK_COMMIT)
            ai.control(TaskMode.TASK_COMMIT)
            writer = AnalogMultiChannelWriter(ao.out_stream, auto_start=False)
            reader = AnalogMultiChannelReader(ai.in_stream)
            writer.verify_array_shape = False
            reader.verify_array_shape = False
            volts = np.empty((8, n))

            def sweep(heaters: np.ndarray) -> np.ndarray:
                """Heater volts (64, S) held B samples each -> mean photodiode volts (8, S)."""
                table = np.ascontiguousarray(np.repeat(heaters, B, axis=1))  # (64, S*B)
                writer.write_many_sample(table, timeout=10.0)
                ai.start()  # armed: waits for /Dev1/ao/StartTrigger
                ao.start()
                timeout = n / actual_rate + 1.0
                ao.wait_until_done(timeout)
                reader.read_many_sample(volts, number_of_samples_per_channel=n, timeout=timeout)
                ai.stop()
                ao.stop()
                return volts.reshape(8, S, B)[:, :, SETTLE:].mean(axis=2)

            model = srv.emulator.respond
            names = tuple(f"Dev2/ai{i}" for i in range(8))
            before = srv.rpc_calls
            for seed in range(3):
                heaters = np.random.default_rng(seed).uniform(0.0, 5.0, (64, S))
                np.testing.assert_allclose(sweep(heaters), model(heaters, names), rtol=1e-12, atol=1e-12)
            per_sweep = srv.rpc_calls - before
            assert sum(per_sweep.values()) == 3 * 7  # write, 2 starts, wait, read, 2 stops
            assert srv.bench_time_s == pytest.approx(3 * n / rate)
        finally:
            ai.close()
            ao.close()
            channel.close()
        assert not srv.unimplemented_calls


# --- refusals -----------------------------------------------------------------------------------


def test_ao_rate_above_the_device_maximum_is_refused(channel: grpc.Channel) -> None:
    with task(channel, "ao") as ao:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:3")
        ao.timing.cfg_samp_clk_timing(2e6, sample_mode=AcquisitionType.FINITE, samps_per_chan=N)
        with pytest.raises(DaqWriteError) as info:  # DAQmx verifies the task at the first write
            ao.write(table(), auto_start=False)
    err = info.value
    assert err.error_code == DAQmxErrors.INVALID_ATTRIBUTE_VALUE.value == -200077
    assert err.samps_per_chan_written == 0
    text = str(err)
    assert "DAQmx_SampClk_Rate" in text and "max_rate" in text and "Dev1" in text
    assert "2.000000e+06" in text and "1.000000e+06" in text


def test_ai_rate_above_the_device_maximum_is_refused_at_start(
    server: DaqmxServer, channel: grpc.Channel
) -> None:
    with task(channel, "ai") as ai:
        ai.ai_channels.add_ai_voltage_chan("Dev2/ai0:1")
        ai.timing.cfg_samp_clk_timing(3e6, sample_mode=AcquisitionType.FINITE, samps_per_chan=N)
        with pytest.raises(DaqError) as info:
            ai.start()
    assert info.value.error_type == DAQmxErrors.INVALID_ATTRIBUTE_VALUE
    assert "devices['Dev2'].max_rate" in str(info.value)
    assert server.bench_time_s == 0.0


def test_write_larger_than_the_buffer_is_refused() -> None:
    with serve_daqmx(bench_devices(buffer_samps_per_chan=60), MODEL) as srv:
        ch = grpc.insecure_channel(srv.address)
        try:
            with task(ch, "ao") as ao:
                ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:3")
                ao.timing.cfg_samp_clk_timing(RATE, sample_mode=AcquisitionType.FINITE, samps_per_chan=N)
                ao.out_stream.regen_mode = RegenerationMode.DONT_ALLOW_REGENERATION
                with pytest.raises(DaqWriteError) as info:
                    ao.write(table(), auto_start=False)
        finally:
            ch.close()
    err = info.value
    assert err.error_type == DAQmxErrors.SAMPLES_CAN_NOT_YET_BE_WRITTEN
    assert err.samps_per_chan_written == 60  # DAQmx writes what fits
    assert "buffer_samps_per_chan = 60" in str(err) and "DAQmx_Buf_Output_BufSize" in str(err)


def test_start_trigger_that_never_comes_times_out(server: DaqmxServer, channel: grpc.Channel) -> None:
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai)
        ao.write(table())
        ai.start()  # the AO task is never started
        t_wall = time.monotonic()
        with pytest.raises(DaqError) as info:
            ai.wait_until_done(timeout=0.2)
        assert time.monotonic() - t_wall >= 0.19
    err = info.value
    assert err.error_type == DAQmxErrors.WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE
    assert err.error_code == -200560
    assert "start trigger /Dev1/ao/StartTrigger" in str(err)
    assert server.emulator.device_time_s("Dev2") == pytest.approx(0.2)  # the bench sat waiting
    assert server.emulator.device_time_s("Dev1") == 0.0


def test_read_before_the_task_is_done_is_refused(server: DaqmxServer, channel: grpc.Channel) -> None:
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai)
        t = table()
        ao.write(t)
        ai.start()
        with pytest.raises(DaqReadError) as info:
            ai.read(number_of_samples_per_channel=N, timeout=0.1)
        assert info.value.error_type == DAQmxErrors.SAMPLES_NOT_YET_AVAILABLE
        assert info.value.samps_per_chan_read == 0
        assert "have not yet been acquired" in str(info.value)
        # The AI task is still armed; once the AO runs, the same read succeeds.
        ao.start()
        np.testing.assert_array_equal(np.asarray(ai.read(number_of_samples_per_channel=N)), expected(t))
        with pytest.raises(DaqReadError) as beyond:
            ai.read(number_of_samples_per_channel=1)
        assert beyond.value.error_type == DAQmxErrors.SAMPLES_WILL_NEVER_BE_AVAILABLE


def test_short_table_without_regeneration_stops_the_generation(
    server: DaqmxServer, channel: grpc.Channel
) -> None:
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai)
        ao.write(table(n=N // 2))
        ai.start()
        ao.start()
        with pytest.raises(DaqError) as info:
            ao.wait_until_done(timeout=1.0)
        assert info.value.error_type == DAQmxErrors.GEN_STOPPED_TO_PREVENT_REGEN_OF_OLD_SAMPLES
        with pytest.raises(DaqError) as starved:  # its clock stopped after N // 2 ticks
            ai.wait_until_done(timeout=0.1)
        assert starved.value.error_type == DAQmxErrors.WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE
        assert server.emulator.device_time_s("Dev1") == pytest.approx(N / 2 / RATE)


def test_bad_channels_and_terminals_are_refused(channel: grpc.Channel) -> None:
    with task(channel, "ao") as ao:
        with pytest.raises(DaqError) as no_chan:
            ao.ao_channels.add_ao_voltage_chan("Dev1/ao4")
        assert no_chan.value.error_type == DAQmxErrors.PHYSICAL_CHAN_DOES_NOT_EXIST
        with pytest.raises(DaqError) as no_dev:
            ao.ao_channels.add_ao_voltage_chan("Dev9/ao0")
        assert no_dev.value.error_type == DAQmxErrors.INVALID_DEVICE_ID
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:3", min_val=-1.0, max_val=1.0)
        ao.timing.cfg_samp_clk_timing(RATE, source="/Dev1/PFI0", samps_per_chan=N)
        with pytest.raises(DaqError) as bad_term:
            ao.write(table(), auto_start=False)
        assert bad_term.value.error_type == DAQmxErrors.INVALID_ROUTING_SOURCE_TERMINAL_NAME_ROUTING
        ao.timing.cfg_samp_clk_timing(RATE, samps_per_chan=N)
        with pytest.raises(DaqWriteError) as out_of_range:  # 3 V on a +-1 V channel
            ao.write(table(), auto_start=False)
        assert out_of_range.value.error_type == DAQmxErrors.INVALID_AO_DATA_WRITE


def test_second_timed_task_on_a_device_is_refused(channel: grpc.Channel) -> None:
    with task(channel, "ao_a") as a, task(channel, "ao_b") as b:
        for t, chans in ((a, "Dev1/ao0:1"), (b, "Dev1/ao2:3")):
            t.ao_channels.add_ao_voltage_chan(chans)
            t.timing.cfg_samp_clk_timing(RATE, samps_per_chan=N)
            t.write(np.zeros((2, N)))
        a.start()
        with pytest.raises(DaqError) as info:
            b.start()
        assert info.value.error_code == -50103
        a.stop()
        b.start()
        b.stop()


def test_restart_without_stop_and_write_after_finish_are_refused(channel: grpc.Channel) -> None:
    with task(channel, "ao") as ao:
        ao.ao_channels.add_ao_voltage_chan("Dev1/ao0:3")
        ao.timing.cfg_samp_clk_timing(RATE, samps_per_chan=N)
        ao.write(table())
        ao.start()
        ao.wait_until_done(timeout=1.0)
        with pytest.raises(DaqError) as again:
            ao.start()  # a finished finite task is still running until stop()
        assert again.value.error_type == DAQmxErrors.CAN_NOT_PERFORM_OP_WHILE_TASK_RUNNING
        with pytest.raises(DaqWriteError) as late:
            ao.write(table())
        assert late.value.error_type == DAQmxErrors.CANNOT_WRITE_BEYOND_FINAL_FINITE_SAMPLE
        ao.stop()
        ao.write(table())  # after stop() the next table is accepted


def test_session_names_attach_like_nis_server(server: DaqmxServer, channel: grpc.Channel) -> None:
    from nidaqmx.grpc_session_options import SessionInitializationBehavior as Init

    first = task(channel, "shared")
    second = task(channel, "shared")  # AUTO: attaches to the same server task
    assert first._close_on_exit and not second._close_on_exit
    with pytest.raises(nidaqmx.errors.RpcError) as exists:
        nidaqmx.Task(
            "shared",
            grpc_options=nidaqmx.GrpcSessionOptions(
                channel, "shared", initialization_behavior=Init.INITIALIZE_SERVER_SESSION
            ),
        )
    assert exists.value.rpc_code == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(DaqError):
        nidaqmx.Task("other", grpc_options=nidaqmx.GrpcSessionOptions(channel, "not-other"))
    second.__exit__(None, None, None)  # detaches only
    assert server.emulator.task_names() == ["shared"]
    first.close()
    assert server.emulator.task_names() == []


# --- threads and shutdown -----------------------------------------------------------------------


def test_wait_in_one_thread_is_released_by_ao_start_in_another(
    server: DaqmxServer, channel: grpc.Channel
) -> None:
    with task(channel, "ao") as ao, task(channel, "ai") as ai:
        configure_pair(ao, ai)
        ao.write(table())
        ai.start()
        outcome: list[object] = []
        waiter = threading.Thread(target=lambda: outcome.append(ai.wait_until_done(timeout=5.0)))
        waiter.start()
        time.sleep(0.1)
        ao.start()
        waiter.join(timeout=5.0)
        assert not waiter.is_alive() and outcome == [None]


def test_server_stops_cleanly_even_with_a_blocked_wait() -> None:
    srv = DaqmxServer(bench_devices(), MODEL)
    srv.start()
    ch = grpc.insecure_channel(srv.address)
    try:
        errors: list[BaseException] = []
        ao = task(ch, "ao")
        ai = task(ch, "ai")
        configure_pair(ao, ai)
        ao.write(table())
        ai.start()

        def wait() -> None:
            try:
                ai.wait_until_done(timeout=30.0)
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                errors.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.stop()
        waiter.join(timeout=5.0)
        assert not waiter.is_alive() and time.monotonic() - t0 < 5.0
        assert errors and isinstance(errors[0], (DaqError, nidaqmx.errors.RpcError))
        assert not [t for t in threading.enumerate() if t.name.startswith("daqmx-emu")]
        with pytest.raises(nidaqmx.errors.RpcError):
            ao.start()  # nothing listens any more
    finally:
        srv.stop()  # a no-op once the test has stopped it
        ch.close()


def test_subprocess_server_prints_its_port_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drivers.emulated.daqmx",
            "--port",
            "0",
            "--devices",
            '{"Dev1": {"kind": "ao", "channels": 4}, "Dev2": {"kind": "ai", "channels": 2}}',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        port = int(line.strip())
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            with task(ch, "ao") as ao, task(ch, "ai") as ai:
                configure_pair(ao, ai)
                t = table()
                ao.write(t)
                ai.start()
                ao.start()
                data = np.asarray(ai.read(number_of_samples_per_channel=N))
                # The subprocess runs the default SumOfSquaresModel: ai k = 0.01 * (ao[2k]^2 + ao[2k+1]^2).
                np.testing.assert_allclose(data, 0.01 * (t[0::2] ** 2 + t[1::2] ** 2), rtol=0, atol=1e-12)
        finally:
            ch.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()

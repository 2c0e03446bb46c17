"""The emulator of NI-DAQmx tasks on virtual clocks: channels, timing, triggers and buffers.

:class:`DaqmxEmulator` holds the devices, the tasks and one virtual clock per device; it knows
nothing of gRPC and is thread-safe. It emulates:

* AO voltage channels (``"Dev1/ao0:63"``) and AI voltage channels (``"Dev2/ai0:7"``), limits in volts.
* ``cfg_samp_clk_timing(rate, source=..., sample_mode=FINITE, samps_per_chan=n)`` (rate in
  samples/s), with the source either the onboard clock (``""``) or another task's sample clock
  terminal (``"/Dev1/ao/SampleClock"``), and ``cfg_dig_edge_start_trig("/Dev1/ao/StartTrigger")``.
* ``write`` (float64 volts, ``auto_start`` honoured, regeneration allowed or not), ``start``,
  ``wait_until_done``, ``read``, ``stop``, ``clear``, ``is_task_done`` and ``control``.
* A VIRTUAL clock per device. A finite task of ``n`` samples at ``r`` samples/s that begins at
  virtual time ``t0`` occupies its device until ``t0 + n / r`` seconds; nothing sleeps. The bench's
  instrument time consumed is :attr:`DaqmxEmulator.bench_time_s` (the latest device clock, seconds).
  Only waits that time out take wall-clock time (they block up to their timeout, so a second
  client thread can still start the triggering task meanwhile).
* The device model (``devices.DeviceModel``), called once per AI acquisition with the AO volts
  held at the AI task's sample clock ticks; its AI volts are clipped to each channel's range.

Only FINITE sample mode is emulated: a continuous task is refused (-200077) at verification.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import grpc
import numpy as np
from nidaqmx.constants import TaskMode
from nidaqmx.error_codes import DAQmxErrors
from nidaqmx.utils import unflatten_channel_string

from .attributes import _ATTRS, _unsupported
from .devices import DeviceModel, DeviceSpec, SumOfSquaresModel, default_devices
from .errors import _RESOURCE_RESERVED, DaqmxFault, _fault, _fmt, _NonDriver
from .tasks import (
    _ALLOW_REGEN,
    _CHANNEL_RE,
    _DONT_ALLOW_REGEN,
    _FINITE,
    _GROUP_BY_CHANNEL,
    _GROUP_BY_SCAN_NUMBER,
    _INIT_ATTACH,
    _INIT_NEW,
    _READ_ALL_AVAILABLE,
    _SAMPLE_CLOCK,
    _TERMINAL_RE,
    _TRIG_DIG_EDGE,
    _TRIG_NONE,
    _Channel,
    _Generation,
    _Task,
)


class DaqmxEmulator:
    """The emulated devices, tasks and virtual clocks, independent of gRPC (thread-safe).

    Args:
        devices: name -> :class:`DeviceSpec` (or a mapping with its fields). Default
            :func:`default_devices`.
        respond: The device model, see :data:`DeviceModel`. Default :class:`SumOfSquaresModel`.
        max_wall_wait_s: Cap in wall-clock seconds on any blocking wait, including
            ``timeout=-1`` (WAIT_INFINITELY); ``None`` = no cap.
    """

    def __init__(
        self,
        devices: Mapping[str, DeviceSpec | Mapping[str, Any]] | None = None,
        respond: DeviceModel | None = None,
        *,
        max_wall_wait_s: float | None = 60.0,
    ) -> None:
        specs = (
            default_devices() if devices is None else {k: DeviceSpec.coerce(v) for k, v in devices.items()}
        )
        self.devices: dict[str, DeviceSpec] = specs
        self._dev_by_lower = {k.lower(): k for k in specs}
        self.respond: DeviceModel = respond if respond is not None else SumOfSquaresModel()
        self.max_wall_wait_s = max_wall_wait_s
        self._cond = threading.Condition(threading.RLock())
        self._tasks: dict[str, _Task] = {}
        self._unnamed = 0
        self._closing = False
        self._device_time: dict[str, float] = {name: 0.0 for name in specs}
        self._hold: dict[str, np.ndarray] = {
            n: np.zeros(s.channels) for n, s in specs.items() if s.kind == "ao"
        }
        self._history: dict[str, _Generation] = {}
        self.model_calls = 0

    # -- public read-outs ----------------------------------------------------------------------

    @property
    def bench_time_s(self) -> float:
        """Instrument time consumed so far, seconds: the latest of the per-device virtual clocks."""
        with self._cond:
            return max(self._device_time.values(), default=0.0)

    def device_time_s(self, device: str) -> float:
        """One device's virtual clock, seconds (the time until which it has been busy)."""
        with self._cond:
            return self._device_time[device]

    def advance(self, seconds: float, device: str | None = None) -> None:
        """Let the bench (or one device) idle: move its virtual clock(s) on by ``seconds``.

        For accounting time the instruments sit idle (e.g. host computation between sweeps).
        """
        if seconds < 0:
            raise ValueError("virtual time only moves forward")
        with self._cond:
            for name in [device] if device is not None else list(self._device_time):
                self._device_time[name] += float(seconds)

    @property
    def ao_channel_names(self) -> tuple[str, ...]:
        """Row order of the ``ao_table`` handed to the device model (every AO channel on the bench)."""
        return tuple(
            f"{n}/ao{i}" for n, s in self.devices.items() if s.kind == "ao" for i in range(s.channels)
        )

    def ao_hold_volts(self) -> np.ndarray:
        """Voltage each bench AO channel holds now, shape ``(len(ao_channel_names),)``, volts."""
        with self._cond:
            parts = [self._hold[n] for n, s in self.devices.items() if s.kind == "ao"]
            return np.concatenate(parts) if parts else np.zeros(0)

    def task_names(self) -> list[str]:
        """Names of the tasks that exist on the server."""
        with self._cond:
            return list(self._tasks)

    def close(self) -> None:
        """Wake every blocked wait/read (they fail with RUNTIME_ABORTED) and refuse new waits."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Accept waits again after :meth:`close` (a server restarted on the same emulator)."""
        with self._cond:
            self._closing = False

    # -- helpers -------------------------------------------------------------------------------

    def _task(self, name: str) -> _Task:
        task = self._tasks.get(name)
        if task is None:
            raise _fault(DAQmxErrors.INVALID_TASK, None, f"Task Name: {name!r} is not on this server.")
        return task

    def _device_name(self, dev: str) -> str | None:
        return self._dev_by_lower.get(dev.lower())

    def _parse_terminal(self, term: str, task: _Task, prop: str) -> tuple[str, str, str]:
        m = _TERMINAL_RE.match(term.strip())
        dev = self._device_name(m.group("dev")) if m else None
        if not m or dev is None or self.devices[dev].kind != m.group("kind").lower():
            raise _fault(
                DAQmxErrors.INVALID_ROUTING_SOURCE_TERMINAL_NAME_ROUTING,
                task.name,
                f"Property: {prop}\nSource Terminal: {term}\n"
                "Terminals this emulator routes: /<AO or AI device>/<ao|ai>/SampleClock and "
                "/<device>/<ao|ai>/StartTrigger, for the devices "
                + ", ".join(f"{n} ({s.kind})" for n, s in self.devices.items()),
            )
        sig = "SampleClock" if m.group("sig").lower() == "sampleclock" else "StartTrigger"
        return dev, m.group("kind").lower(), sig

    def _parse_channels(
        self, task: _Task, physical: str, kind: Literal["ao", "ai"], assign: str
    ) -> list[tuple[str, str, int]]:
        try:
            names = unflatten_channel_string(physical)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the driver's syntax error
            raise _fault(
                DAQmxErrors.INVALID_SYNTAX_FOR_PHYSICAL_CHANNEL_RANGE, task.name, f"Channel Name: {physical}"
            ) from exc
        if not names:
            raise _fault(DAQmxErrors.PHYSICAL_CHAN_DOES_NOT_EXIST, task.name, "Physical Channel Name: ''")
        out: list[tuple[str, str, int]] = []
        for raw in names:
            m = _CHANNEL_RE.match(raw.strip())
            dev_part = raw.strip().lstrip("/").split("/", 1)[0]
            dev = self._device_name(dev_part)
            if dev is None:
                raise _fault(
                    DAQmxErrors.INVALID_DEVICE_ID,
                    task.name,
                    f"Device Specified: {dev_part}\nDevices on this server: {', '.join(self.devices)}",
                )
            spec = self.devices[dev]
            if (
                not m
                or m.group("kind").lower() != kind
                or spec.kind != kind
                or int(m.group("idx")) >= spec.channels
            ):
                raise _fault(
                    DAQmxErrors.PHYSICAL_CHAN_DOES_NOT_EXIST,
                    task.name,
                    f"Device: {dev} ({spec.product_type}, {spec.channels} {spec.kind.upper()} channels)\n"
                    f"Physical Channel Name: {raw.strip().lstrip('/').split('/', 1)[-1]}",
                )
            out.append((f"{dev}/{kind}{int(m.group('idx'))}", dev, int(m.group("idx"))))
        if task.channels and (
            task.kind != kind or task.device != out[0][1] or any(d != out[0][1] for _, d, _ in out)
        ):
            # One timing engine per task: this emulator keeps a task on one device and one kind.
            raise _fault(
                DAQmxErrors.PHYSICAL_CHAN_DOES_NOT_EXIST,
                task.name,
                f"Physical Channel Name: {physical}\nThis emulator keeps every channel of a task on one "
                f"device of one kind; the task already uses {task.device} ({task.kind}).",
            )
        return out

    def _select_channels(self, task: _Task, channel: str) -> list[_Channel]:
        if not channel:
            return list(task.channels)
        wanted = [c.strip() for c in unflatten_channel_string(channel)]
        picked: list[_Channel] = []
        for w in wanted:
            hit = next((c for c in task.channels if c.name == w or c.physical.lower() == w.lower()), None)
            if hit is None:
                raise _fault(DAQmxErrors.CHAN_NOT_IN_TASK, task.name, f"Channel Name: {w}")
            picked.append(hit)
        return picked

    def _actual_rate(self, task: _Task) -> float:
        """Onboard clock rate after timebase division, samples/s (external clock: as requested)."""
        if task.clock_source.strip() and task.clock_source.strip().lower() != "onboardclock":
            return task.rate
        spec = self.devices[task.device] if task.device else None
        if spec is None or task.rate <= 0:
            return task.rate
        divisor = max(1, round(spec.timebase_hz / task.rate))
        return spec.timebase_hz / divisor

    def _external_clock(self, task: _Task) -> tuple[str, str] | None:
        src = task.clock_source.strip()
        if not src or src.lower() == "onboardclock":
            return None
        dev, kind, sig = self._parse_terminal(src, task, "DAQmx_SampClk_Src")
        if sig != "SampleClock":
            raise _fault(
                DAQmxErrors.INVALID_ROUTING_SOURCE_TERMINAL_NAME_ROUTING,
                task.name,
                f"Property: DAQmx_SampClk_Src\nSource Terminal: {src}\nA sample clock source must be a "
                "SampleClock terminal.",
            )
        return dev, kind

    def _verify(self, task: _Task) -> None:
        """What DAQmx checks when a task is verified/committed (first write, start, control)."""
        if not task.channels:
            raise _fault(DAQmxErrors.CAN_NOT_PERFORM_OP_WHEN_NO_CHANS_IN_TASK, task.name)
        spec = self.devices[task.device]  # type: ignore[index]
        if task.hw_timed:
            if task.sample_mode != _FINITE:
                raise _fault(
                    DAQmxErrors.INVALID_ATTRIBUTE_VALUE,
                    task.name,
                    f"Property: DAQmx_SampQuant_SampMode\nRequested Value: {task.sample_mode}\n"
                    f"You Can Select: DAQmx_Val_FiniteSamps ({_FINITE})\n"
                    "This emulator runs finite tasks only: a continuous task has no end on a virtual clock.",
                )
            rate = task.rate
            if not (rate >= spec.min_rate_sps and rate <= spec.max_rate_sps):
                raise _fault(
                    DAQmxErrors.INVALID_ATTRIBUTE_VALUE,
                    task.name,
                    f"Property: DAQmx_SampClk_Rate\nRequested Value: {_fmt(rate)}\n"
                    f"Maximum Value: {_fmt(spec.max_rate_sps)}\nMinimum Value: {_fmt(spec.min_rate_sps)}\n"
                    f"Device: {task.device} ({spec.product_type}); emulator setting "
                    f"devices[{task.device!r}].max_rate = {_fmt(spec.max_rate_sps)} samples/s per channel",
                )
            if task.samps_per_chan < 1 and task.sample_mode == _FINITE:
                raise _fault(
                    DAQmxErrors.INVALID_ATTRIBUTE_VALUE,
                    task.name,
                    f"Property: DAQmx_SampQuant_SampPerChan\nRequested Value: {task.samps_per_chan}\n"
                    "Minimum Value: 1",
                )
            if task.kind == "ai" and task.samps_per_chan > spec.buffer_samps_per_chan:
                raise _fault(
                    DAQmxErrors.INVALID_ATTRIBUTE_VALUE,
                    task.name,
                    f"Property: DAQmx_Buf_Input_BufSize\nRequested Value: {task.samps_per_chan}\n"
                    f"Maximum Value: {spec.buffer_samps_per_chan}\nDevice: {task.device}; emulator "
                    f"setting devices[{task.device!r}].buffer_samps_per_chan = {spec.buffer_samps_per_chan}",
                )
            self._external_clock(task)
        if task.trigger_type == _TRIG_DIG_EDGE:
            self._parse_terminal(task.trigger_source, task, "DAQmx_DigEdge_StartTrig_Src")

    def _check_reserved(self, task: _Task) -> None:
        for other in self._tasks.values():
            if (
                other is not task
                and other.started
                and other.device == task.device
                and other.hw_timed
                and task.hw_timed
            ):
                raise _fault(
                    _RESOURCE_RESERVED,
                    task.name,
                    f"Device: {task.device}\nThe {task.kind.upper() if task.kind else ''} timing engine is "  # noqa: E501
                    f"in use by task {other.name!r}; stop it first.",
                )

    def _now(self) -> float:
        """The bench's present virtual time: the latest device clock, s."""
        return max(self._device_time.values(), default=0.0)

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block (wall clock) until predicate() or timeout seconds; -1 = forever. Holds the lock."""
        limit = None if timeout < 0 else float(timeout)
        if self.max_wall_wait_s is not None:
            limit = self.max_wall_wait_s if limit is None else min(limit, self.max_wall_wait_s)
        ok = self._cond.wait_for(lambda: predicate() or self._closing, timeout=limit)
        if self._closing and not predicate():
            raise _fault(
                DAQmxErrors.RUNTIME_ABORTED_ROUTING, None, "The emulated device server is shutting down."
            )
        return bool(ok)

    # -- tasks ---------------------------------------------------------------------------------

    def create_task(self, session_name: str, behavior: int) -> tuple[str, bool]:
        """Return (session/task name, new session initialized)."""
        with self._cond:
            if session_name in self._tasks:
                if behavior == _INIT_NEW:
                    raise _NonDriver(
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"Cannot initialize '{session_name}' when a session already exists.",
                    )
                return session_name, False
            if behavior == _INIT_ATTACH:
                raise _NonDriver(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Cannot attach to '{session_name}' because a session has not been initialized.",
                )
            name = session_name
            if not name:
                while f"_unnamedTask<{self._unnamed}>" in self._tasks:
                    self._unnamed += 1
                name = f"_unnamedTask<{self._unnamed}>"
                self._unnamed += 1
            self._tasks[name] = _Task(name=name)
            return name, True

    def clear_task(self, name: str) -> None:
        """Stop the task (a pending error is dropped) and remove it from the server."""
        with self._cond:
            task = self._task(name)
            self._stop(task, report=False)
            del self._tasks[name]
            self._cond.notify_all()

    def add_channels(
        self,
        name: str,
        kind: Literal["ao", "ai"],
        physical: str,
        assign: str,
        min_val: float,
        max_val: float,
        terminal_config: int = -1,
    ) -> None:
        """Add voltage channels ``physical`` (e.g. ``"Dev1/ao0:3"``) with limits ``min_val..max_val`` V.

        ``assign`` names the virtual channels (``""``: the physical names; one name for several channels:
        that name with 0, 1, ... appended). Every channel of a task is on one device of one kind.
        """
        with self._cond:
            task = self._task(name)
            if task.started:
                raise _fault(DAQmxErrors.CAN_NOT_PERFORM_OP_WHILE_TASK_RUNNING, task.name)
            parsed = self._parse_channels(task, physical, kind, assign)
            spec = self.devices[parsed[0][1]]
            lo, hi = spec.voltage_range
            if not (min_val < max_val):
                raise _fault(
                    DAQmxErrors.MIN_NOT_LESS_THAN_MAX,
                    task.name,
                    f"Minimum Value: {min_val}\nMaximum Value: {max_val}",
                )
            if min_val < lo - 1e-12 or max_val > hi + 1e-12:
                prop = "DAQmx_AO_Max" if kind == "ao" else "DAQmx_AI_Max"
                raise _fault(
                    DAQmxErrors.INVALID_ATTRIBUTE_VALUE,
                    task.name,
                    f"Property: {prop}\nRequested Range: {min_val} to {max_val} V\n"
                    f"Device range: {lo} to {hi} V (emulator setting devices[{parsed[0][1]!r}].voltage_range)",
                )
            if assign:
                names = unflatten_channel_string(assign)
                if len(names) == 1 and len(parsed) > 1:
                    names = [f"{names[0]}{i}" for i in range(len(parsed))]
                if len(names) != len(parsed):
                    raise _fault(DAQmxErrors.INVALID_CHANNEL, task.name, f"Channel Name: {assign}")
            else:
                names = [p for p, _, _ in parsed]
            present = {c.physical for c in task.channels}
            for (phys, dev, idx), vname in zip(parsed, names, strict=True):
                if phys in present:
                    raise _fault(
                        DAQmxErrors.DUPLICATE_PHYSICAL_CHANS_NOT_SUPPORTED,
                        task.name,
                        f"Physical Channel: {phys}",
                    )
                task.channels.append(
                    _Channel(phys, vname, dev, kind, idx, float(min_val), float(max_val), terminal_config)
                )
                present.add(phys)

    def cfg_samp_clk_timing(
        self, name: str, rate: float, source: str, edge: int, mode: int, samps: int
    ) -> None:
        """Sample clock timing: ``rate`` samples/s (checked at verification), ``source`` ``""`` for the
        onboard clock or a SampleClock terminal, ``mode`` a DAQmx sample mode, ``samps`` samples per channel."""
        with self._cond:
            task = self._task(name)
            if task.started:
                raise _fault(DAQmxErrors.CAN_NOT_PERFORM_OP_WHILE_TASK_RUNNING, task.name)
            task.timing_type = _SAMPLE_CLOCK
            task.rate = float(rate)
            task.clock_source = source
            task.active_edge = edge
            task.sample_mode = mode
            task.samps_per_chan = int(samps)

    def cfg_dig_edge_start_trig(self, name: str, source: str, edge: int) -> None:
        """Start on another task's StartTrigger terminal ``source`` (e.g. ``"/Dev1/ao/StartTrigger"``)."""
        with self._cond:
            task = self._task(name)
            if task.started:
                raise _fault(DAQmxErrors.CAN_NOT_PERFORM_OP_WHILE_TASK_RUNNING, task.name)
            task.trigger_type = _TRIG_DIG_EDGE
            task.trigger_source = source
            task.trigger_edge = edge

    def set_regen_mode(self, name: str, value: int) -> None:
        """DAQmx_Write_RegenMode: ALLOW_REGENERATION or DONT_ALLOW_REGENERATION (``RegenerationMode`` values)."""
        with self._cond:
            task = self._task(name)
            if value not in (_ALLOW_REGEN, _DONT_ALLOW_REGEN):
                raise _fault(
                    DAQmxErrors.INVALID_ATTRIBUTE_VALUE,
                    task.name,
                    f"Property: DAQmx_Write_RegenMode\nRequested Value: {value}",
                )
            task.regen_mode = value

    # -- write / start / wait / read / stop ----------------------------------------------------

    def write(self, name: str, n: int, auto_start: bool, layout: int, flat: np.ndarray) -> int:
        """Write ``n`` samples per channel (volts); returns samples per channel written."""
        with self._cond:
            task = self._task(name)
            if task.kind != "ao":
                raise _fault(DAQmxErrors.WRITE_NO_OUTPUT_CHANS_IN_TASK, task.name, samps_per_chan_written=0)
            nch = task.n_chans
            if n < 0 or flat.size != n * nch:
                raise _fault(
                    DAQmxErrors.WRITE_NUM_CHANS_MISMATCH,
                    task.name,
                    f"Number of Channels in Task: {nch}\nSamples per channel: {n}\nArray size: {flat.size}",
                    samps_per_chan_written=0,
                )
            self._verify(task)  # the first write verifies/commits the task, as in DAQmx
            table = flat.reshape(nch, n) if layout == _GROUP_BY_CHANNEL else flat.reshape(n, nch).T
            _, lo, hi = task.channel_arrays()
            lo, hi = lo[:, None], hi[:, None]
            bad = (table < lo - 1e-9) | (table > hi + 1e-9) | ~np.isfinite(table)
            if bad.any():
                ch, k = (int(v[0]) for v in np.nonzero(bad))
                raise _fault(
                    DAQmxErrors.INVALID_AO_DATA_WRITE,
                    task.name,
                    f"Channel Name: {task.channels[ch].name}\nSample Index: {k}\nValue: {float(table[ch, k])!r} V\n"
                    f"Channel range: {task.channels[ch].min_val} to {task.channels[ch].max_val} V",
                    samps_per_chan_written=0,
                )
            if not task.hw_timed:
                # On-demand (software-timed) AO: the last sample is put out now and held.
                if n:
                    self._apply_on_demand(task, table[:, -1])
                return n
            if task.started and task.begun:
                if task.sample_mode == _FINITE and task.done:
                    raise _fault(
                        DAQmxErrors.CANNOT_WRITE_BEYOND_FINAL_FINITE_SAMPLE,
                        task.name,
                        samps_per_chan_written=0,
                    )
            spec = self.devices[task.device]  # type: ignore[index]
            have = 0 if (task.replace_on_write or task.buffer is None) else task.buffer.shape[1]
            space = spec.buffer_samps_per_chan - have
            take = max(0, min(n, space))
            kept = table[:, :take]
            task.buffer = kept.copy() if have == 0 else np.concatenate([task.buffer, kept], axis=1)
            task.replace_on_write = False
            if take < n:
                raise _fault(
                    DAQmxErrors.SAMPLES_CAN_NOT_YET_BE_WRITTEN,
                    task.name,
                    f"Property: DAQmx_Buf_Output_BufSize\nBuffer Size: {spec.buffer_samps_per_chan} samples per "
                    f"channel\nSamples per channel already in buffer: {have}\nSamples per channel in this "
                    f"write: {n}\nSamples per channel written: {take}\nDevice: {task.device}; emulator setting "
                    f"devices[{task.device!r}].buffer_samps_per_chan = {spec.buffer_samps_per_chan}\n"
                    "The task is not running, so no space will free up.",
                    samps_per_chan_written=take,
                )
            if auto_start and not task.started:
                self._start(task)
            return n

    def write_raw(self, name: str, n: int, auto_start: bool, data: bytes) -> int:
        """``DAQmxWriteRaw``: ``n`` scans of int16 codes, interleaved by scan (every channel of the
        task per scan), each ``c0 + c1 V`` of its device (:attr:`DeviceSpec.scaling_coeff`)."""
        with self._cond:
            task = self._task(name)
            if task.kind != "ao":
                raise _fault(DAQmxErrors.WRITE_NO_OUTPUT_CHANS_IN_TASK, task.name, samps_per_chan_written=0)
            codes = np.frombuffer(data, dtype="<i2")
            nch = task.n_chans
            if codes.size != n * nch:
                raise _fault(
                    DAQmxErrors.WRITE_NUM_CHANS_MISMATCH,
                    task.name,
                    f"Number of Channels in Task: {nch}\nSamples per channel: {n}\nRaw samples: {codes.size}",
                    samps_per_chan_written=0,
                )
            c0, c1 = self.devices[task.device].scaling_coeff  # type: ignore[index]
            volts = (codes.astype(np.float64) - c0) / c1
            return self.write(name, n, auto_start, _GROUP_BY_SCAN_NUMBER, volts)

    def _apply_on_demand(self, task: _Task, values: np.ndarray) -> None:
        dev = task.device
        assert dev is not None
        new = self._hold[dev].copy()
        for c, v in zip(task.channels, values, strict=True):
            new[c.index] = v
        t = self._now()  # an on-demand write happens now on the bench, whatever this device did before
        self._device_time[dev] = t
        self._history[dev] = _Generation(t0=t, rate=1.0, table=new[:, None], pre=self._hold[dev].copy())
        self._hold[dev] = new

    def start(self, name: str) -> None:
        """Verify and start the task: at once on its device's virtual clock, or armed for its trigger/clock."""
        with self._cond:
            self._start(self._task(name))

    def _start(self, task: _Task) -> None:
        if task.started:
            raise _fault(DAQmxErrors.CAN_NOT_PERFORM_OP_WHILE_TASK_RUNNING, task.name)
        self._verify(task)
        self._check_reserved(task)
        task.started = True
        task.begun = task.done = False
        task.error = None
        task.ticks = task.read_pos = 0
        task.data = None
        if not task.hw_timed:
            task.begun = task.done = True  # on-demand tasks are "done" at once
            return
        if task.kind == "ao" and (task.buffer is None or task.buffer.shape[1] == 0):
            task.started = False
            raise _fault(
                DAQmxErrors.OUTPUT_BUFFER_EMPTY,
                task.name,
                f"Samples per channel in the buffer: 0 (DAQmx_SampQuant_SampPerChan = {task.samps_per_chan})",
            )
        if task.trigger_type == _TRIG_NONE and self._external_clock(task) is None:
            self._cascade(task, self._device_time[task.device])  # type: ignore[index]
        # else: armed, waiting for its start trigger or its clock source.
        self._cond.notify_all()

    def _cascade(self, first: _Task, t0: float) -> None:
        """Begin ``first`` at virtual time t0, then every armed task its start trigger or its
        sample clock starts (recursively), then run the device model for the AI tasks begun."""
        begun: list[_Task] = []
        pending: list[tuple[_Task, float]] = [(first, t0)]
        while pending:
            task, t_start = pending.pop(0)
            ext = self._external_clock(task)
            clock: _Task | None | Literal["none"] = None
            if ext is not None:
                clock = next((b for b in begun if (b.device, b.kind) == ext), "none")
            self._begin(task, t_start, None if clock == "none" else clock, starved=clock == "none")
            begun.append(task)
            start_term = task.terminal("StartTrigger").lower()
            for other in self._tasks.values():
                if not other.started or other.begun or other is task or any(o is other for o, _ in pending):
                    continue
                if other.trigger_type == _TRIG_DIG_EDGE:
                    hit = self._same_term(other.trigger_source, start_term)
                else:  # untriggered, waiting only for its external sample clock
                    hit = self._external_clock(other) == (task.device, task.kind)
                if hit:
                    pending.append((other, task.t0))
        for task in begun:
            if task.kind == "ai" and task.error is None:
                self._acquire(task)
        for task in begun:
            dev = task.device
            assert dev is not None
            end = task.t0 + (task.ticks / task.eff_rate if task.eff_rate > 0 else 0.0)
            self._device_time[dev] = max(self._device_time[dev], end)
        self._cond.notify_all()

    @staticmethod
    def _same_term(a: str, b_lower: str) -> bool:
        return "/" + a.strip().lstrip("/").lower() == b_lower

    def _begin(self, task: _Task, t0: float, clock: _Task | None, *, starved: bool = False) -> None:
        """Mark a task as running from virtual time t0 and count the samples it gets.

        ``clock`` is the task whose sample clock drives this one (None: its onboard clock);
        ``starved``: its external clock source is not running, so it gets no ticks at all.
        A continuous task is treated as one buffer of ``samps_per_chan`` samples.
        """
        spec = self.devices[task.device]  # type: ignore[index]
        task.begun = True
        task.t0 = t0
        n = task.samps_per_chan
        if starved:
            task.eff_rate = task.rate
            available = 0
        elif clock is not None:
            task.eff_rate = clock.eff_rate
            available = clock.ticks
        else:
            task.eff_rate = self._actual_rate(task)
            available = n
        if task.kind == "ao":
            buf = task.buffer if task.buffer is not None else np.zeros((task.n_chans, 0))
            if task.regen_mode == _ALLOW_REGEN and buf.shape[1]:
                out = np.resize(buf, (task.n_chans, n)) if buf.shape[1] < n else buf[:, :n]
            else:
                out = buf[:, :n]
            gen = min(out.shape[1], available)
            out = out[:, :gen]
            task.ticks = gen
            if gen < n and task.regen_mode == _DONT_ALLOW_REGEN and gen < available:
                task.error = _fault(
                    DAQmxErrors.GEN_STOPPED_TO_PREVENT_REGEN_OF_OLD_SAMPLES,
                    task.name,
                    f"Samples per channel to generate (DAQmx_SampQuant_SampPerChan): {n}\n"
                    f"Samples per channel written: {buf.shape[1]}\nRegeneration Mode: DAQmx_Val_DoNotAllowRegen",
                )
            task.done = gen >= n or task.error is not None
            dev = task.device
            assert dev is not None
            full = np.repeat(self._hold[dev][:, None], gen, axis=1)
            full[task.channel_arrays()[0]] = out
            self._history[dev] = _Generation(
                t0=t0, rate=task.eff_rate, table=full, pre=self._hold[dev].copy()
            )
            if gen:
                self._hold[dev] = full[:, -1].copy()
            if task.regen_mode == _DONT_ALLOW_REGEN:
                task.buffer = None if gen >= buf.shape[1] else buf[:, gen:]
        else:
            task.ticks = min(n, available)
            task.done = task.ticks >= n
            if task.eff_rate > spec.max_rate_sps * (1 + 1e-9):
                task.error = _fault(
                    DAQmxErrors.ADC_OVERRUN,
                    task.name,
                    f"Sample clock source: {task.clock_source} at {_fmt(task.eff_rate)} samples/s\n"
                    f"Maximum rate of {task.device}: {_fmt(spec.max_rate_sps)} samples/s (emulator setting "
                    f"devices[{task.device!r}].max_rate)",
                )
                task.done = True

    def _acquire(self, task: _Task) -> None:
        """Fill an AI task's data from the device model at its sample clock ticks."""
        k = task.ticks
        ticks = np.arange(k, dtype=np.float64)
        offsets = ticks / task.eff_rate if task.eff_rate > 0 else np.zeros(k)
        held_model = getattr(self.respond, "respond_held", None)
        if held_model is not None and k:
            held = {}
            for dev, spec in self.devices.items():
                if spec.kind != "ao":
                    continue
                gen = self._history.get(dev)
                held[dev] = (gen.held(task.t0, offsets) if gen is not None else
                             (self._hold[dev][:, None], np.zeros(k, dtype=np.int64), np.full(k, np.inf)))
            self.model_calls += 1
            out = np.asarray(held_model(held, tuple(c.physical for c in task.channels)), dtype=np.float64)
            _, lo, hi = task.channel_arrays()
            task.data = np.clip(out, lo[:, None], hi[:, None])
            return
        rows = []
        for dev, spec in self.devices.items():
            if spec.kind != "ao":
                continue
            gen = self._history.get(dev)
            rows.append(
                gen.at(task.t0, offsets)
                if gen is not None
                else np.repeat(self._hold[dev][:, None], k, axis=1)
            )
        ao_table = np.concatenate(rows, axis=0) if rows else np.zeros((0, k))
        ai_names = tuple(c.physical for c in task.channels)
        if k:
            self.model_calls += 1
            out = np.asarray(self.respond(ao_table, ai_names), dtype=np.float64)
            if out.shape != (len(ai_names), k):
                raise _NonDriver(
                    grpc.StatusCode.INTERNAL,
                    f"device model returned shape {out.shape}, expected {(len(ai_names), k)}",
                )
            lo = np.array([c.min_val for c in task.channels])[:, None]
            hi = np.array([c.max_val for c in task.channels])[:, None]
            task.data = np.clip(out, lo, hi)  # an ADC saturates at its range
        else:
            task.data = np.zeros((len(ai_names), 0))

    def _raise_task_error(self, task: _Task) -> None:
        if task.error is not None:
            task.error.reported = True
            raise task.error

    def wait_until_done(self, name: str, timeout: float) -> None:
        """Block until the task is done, up to ``timeout`` wall-clock seconds (-1: forever, capped by
        ``max_wall_wait_s``); a timeout adds ``timeout`` s to the device's virtual clock and raises -200560."""
        with self._cond:
            task = self._task(name)
            if not task.started:
                return
            if not self._wait(lambda: task.done or self._tasks.get(task.name) is not task, timeout):
                dev = task.device
                if dev is not None and timeout > 0:
                    self._device_time[dev] += timeout  # the bench sat waiting for that long
                waiting = (
                    f"start trigger {task.trigger_source}"
                    if task.trigger_type == _TRIG_DIG_EDGE and not task.begun
                    else f"sample clock {task.clock_source}"
                )
                raise _fault(
                    DAQmxErrors.WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE,
                    task.name,
                    f"Timeout Specified: {timeout} s\nWaiting for: {waiting} "
                    f"({task.ticks} of {task.samps_per_chan} samples per channel so far)",
                )
            if self._tasks.get(task.name) is not task:  # cleared by another client meanwhile
                raise _fault(DAQmxErrors.RUNTIME_ABORTED_ROUTING, task.name, "The task was cleared.")
            self._raise_task_error(task)

    def is_task_done(self, name: str) -> bool:
        """Whether the task has all its samples (True when not started); raises the task's pending error."""
        with self._cond:
            task = self._task(name)
            if not task.started:
                return True
            self._raise_task_error(task)
            return task.done

    def read(
        self, name: str, n: int, timeout: float, fill_mode: int, array_size: int
    ) -> tuple[np.ndarray, int, int]:
        """Read ``n`` samples per channel (-1: all of a finite acquisition); volts.

        Returns (flat read array of ``array_size`` float64, samples per channel read, status):
        status is 0, or SAMPLES_NOT_YET_AVAILABLE when the timeout (seconds, wall clock) passed
        first, which NI's server reports in the response rather than as a gRPC error.
        """
        with self._cond:
            task = self._task(name)
            if task.kind != "ai":
                raise _fault(DAQmxErrors.READ_NO_INPUT_CHANS_IN_TASK, task.name, samps_per_chan_read=0)
            if n < _READ_ALL_AVAILABLE:
                raise _fault(
                    DAQmxErrors.INVALID_NUMBER_SAMPLES_TO_READ,
                    task.name,
                    f"Requested: {n}",
                    samps_per_chan_read=0,
                )
            if not task.hw_timed:
                want = 1 if n == _READ_ALL_AVAILABLE else n
                self._check_array(task, want, array_size)
                return self._read_on_demand(task, want, fill_mode, array_size), want, 0
            if not task.started:
                self._start(task)  # DAQmx Read starts an input task that was not started
                task.auto_started_by_read = True
            total = task.samps_per_chan
            remaining = total - task.read_pos
            want = remaining if n == _READ_ALL_AVAILABLE else n
            self._check_array(task, want, array_size)
            target = min(want, remaining)
            ready = self._wait(
                lambda: task.error is not None or task.ticks - task.read_pos >= target, timeout
            )
            if task.error is not None:
                task.error.reported = True
                raise DaqmxFault(task.error.code, task.error.message, samps_per_chan_read=0)
            got = min(want, task.ticks - task.read_pos)
            flat = self._take(task, got, want, fill_mode, array_size)
            if task.auto_started_by_read and (not ready or task.read_pos >= total):
                self._stop(task, report=False)
            if ready and want > remaining:
                raise _fault(
                    DAQmxErrors.SAMPLES_WILL_NEVER_BE_AVAILABLE,
                    task.name,
                    f"Attempted to Read Sample: {total}\nProperty: DAQmx_Read_RelativeTo\n"
                    f"Corresponding Value: DAQmx_Val_CurrReadPos\nSamples per channel requested: {want}\n"
                    f"Samples per channel left in the acquisition (DAQmx_SampQuant_SampPerChan = {total}): {remaining}",
                    samps_per_chan_read=got,
                )
            if not ready:
                return flat, got, int(DAQmxErrors.SAMPLES_NOT_YET_AVAILABLE.value)
            return flat, got, 0

    def _check_array(self, task: _Task, want: int, array_size: int) -> None:
        if array_size < want * task.n_chans:
            raise _fault(
                DAQmxErrors.READ_BUFFER_TOO_SMALL,
                task.name,
                f"Required Buffer Size in Samples: {want * task.n_chans}\nBuffer Size in Samples: {array_size}",
                samps_per_chan_read=0,
            )

    def _read_on_demand(self, task: _Task, want: int, fill_mode: int, array_size: int) -> np.ndarray:
        """Software-timed AI: ``want`` conversions now, of the AO voltages held now."""
        t = self._now()
        self._device_time[task.device] = t  # type: ignore[index]
        task.t0, task.eff_rate, task.ticks, task.read_pos = t, 0.0, want, 0
        self._acquire(task)
        out = self._take(task, want, want, fill_mode, array_size)
        task.ticks = task.read_pos = 0
        task.data = None
        return out

    def _take(self, task: _Task, got: int, want: int, fill_mode: int, array_size: int) -> np.ndarray:
        flat = np.zeros(array_size, dtype=np.float64)
        if got <= 0 or task.data is None:
            return flat
        block = task.data[:, task.read_pos : task.read_pos + got]
        task.read_pos += got
        if fill_mode == _GROUP_BY_SCAN_NUMBER:
            flat[: block.size] = block.T.ravel()
        else:
            for c in range(block.shape[0]):
                flat[c * want : c * want + got] = block[c]
        return flat

    def stop(self, name: str) -> None:
        """Stop the task (a finished finite task stays running until this); raises its pending error."""
        with self._cond:
            self._stop(self._task(name), report=True)

    def _stop(self, task: _Task, *, report: bool) -> None:
        err = task.error if (task.started and task.error is not None and not task.error.reported) else None
        if task.kind == "ao" and task.regen_mode == _DONT_ALLOW_REGEN:
            task.buffer = None
        task.replace_on_write = True
        task.started = task.begun = task.done = False
        task.auto_started_by_read = False
        task.error = None
        self._cond.notify_all()
        if report and err is not None:
            err.reported = True
            raise err

    def control(self, name: str, action: int) -> None:
        """DAQmxTaskControl: ``action`` a ``TaskMode`` value (start, stop, abort, verify, commit, reserve, ...)."""
        with self._cond:
            task = self._task(name)
            if action == TaskMode.TASK_START.value:
                self._start(task)
            elif action in (TaskMode.TASK_STOP.value, TaskMode.TASK_ABORT.value):
                self._stop(task, report=action == TaskMode.TASK_STOP.value)
            elif action in (
                TaskMode.TASK_VERIFY.value,
                TaskMode.TASK_COMMIT.value,
                TaskMode.TASK_RESERVE.value,
            ):
                self._verify(task)
                if action != TaskMode.TASK_VERIFY.value:
                    self._check_reserved(task)
            elif action == TaskMode.TASK_UNRESERVE.value:
                if task.started:
                    raise _fault(DAQmxErrors.CAN_NOT_PERFORM_OP_WHILE_TASK_RUNNING, task.name)
            else:
                raise _fault(DAQmxErrors.INVALID_ATTRIBUTE_VALUE, task.name, f"Action: {action}")

    # -- attributes ----------------------------------------------------------------------------

    def attribute(self, group: str, name: str, attr: int, channel: str = "") -> Any:
        """Value of a task/channel/read/write/timing/trigger attribute (DAQmx attribute id)."""
        with self._cond:
            task = self._task(name)
            getter = _ATTRS.get((group, attr))
            if getter is None:
                raise _unsupported(task, attr)
            if group == "chan":
                chans = self._select_channels(task, channel)
                values = {getter(self, task, c) for c in chans}
                if len(values) != 1:
                    raise _fault(
                        DAQmxErrors.ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT,
                        task.name,
                        f"Property: 0x{attr:X}\nThe channels {channel!r} differ in this property; ask one at a time.",
                    )
                return getter(self, task, chans[0])
            return getter(self, task)

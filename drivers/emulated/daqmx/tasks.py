"""The state of one emulated task and its channels, and the DAQmx constants the emulator uses.

``_Task`` is one DAQmx task (channels, timing, trigger, AO buffer, run state, AI data);
``_Channel`` one virtual channel (limits in volts); ``_Generation`` what one AO device put out
(a table of volts, shape ``(device channels, n)``, on a clock in samples/s from a virtual time in
seconds). The regular expressions parse physical channel names (``"Dev1/ao3"``) and the routed
terminals (``"/Dev1/ao/SampleClock"``, ``"/Dev1/ao/StartTrigger"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from nidaqmx.constants import AcquisitionType, Edge, RegenerationMode, SampleTimingType, TriggerType

from .errors import DaqmxFault

_FINITE = AcquisitionType.FINITE.value
_ON_DEMAND = SampleTimingType.ON_DEMAND.value
_SAMPLE_CLOCK = SampleTimingType.SAMPLE_CLOCK.value
_ALLOW_REGEN = RegenerationMode.ALLOW_REGENERATION.value
_DONT_ALLOW_REGEN = RegenerationMode.DONT_ALLOW_REGENERATION.value
_TRIG_NONE = TriggerType.NONE.value
_TRIG_DIG_EDGE = TriggerType.DIGITAL_EDGE.value
_RISING = Edge.RISING.value
_READ_ALL_AVAILABLE = -1
_GROUP_BY_CHANNEL = 0
_GROUP_BY_SCAN_NUMBER = 1

# Session initialization behaviours (nidevice_grpc.SessionInitializationBehavior; 0 = AUTO).
_INIT_NEW, _INIT_ATTACH = 1, 2


@dataclass
class _Channel:
    physical: str  # "Dev1/ao3"
    name: str  # virtual channel name (defaults to the physical name)
    device: str
    kind: Literal["ao", "ai"]
    index: int
    min_val: float
    max_val: float
    terminal_config: int = -1


@dataclass
class _Generation:
    """What one AO device put out: ``table[:, k]`` from ``t0 + k / rate`` on; before t0, ``pre``."""

    t0: float
    rate: float
    table: np.ndarray  # (device channels, n) volts
    pre: np.ndarray  # (device channels,) volts

    def held(self, t0: float, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What is put out at virtual times ``t0 + offsets`` (s), without repeating columns:
        ``(columns (device channels, m + 1) V: the value before the generation then its m samples,
        index (len(offsets),) into them, since (len(offsets),) s since that column began; inf for
        the value before)``. Zero-order hold, as :meth:`at`."""
        n = self.table.shape[1]
        elapsed = (t0 - self.t0) + offsets
        k = np.minimum(np.floor(elapsed * self.rate + 1e-6).astype(np.int64), n - 1)
        since = np.where(k >= 0, elapsed - np.maximum(k, 0) / self.rate, np.inf)
        return np.concatenate([self.pre[:, None], self.table], axis=1), np.maximum(k, -1) + 1, since

    def at(self, t0: float, offsets: np.ndarray) -> np.ndarray:
        """Volts (device channels, len(offsets)) at virtual times ``t0 + offsets`` (seconds).

        Zero-order hold: sample ``k`` is held from ``self.t0 + k / rate`` until the next one, the
        last one after the end. ``t0 - self.t0`` is taken first, so ticks of a shared clock
        (same t0, offsets ``j / rate``) land exactly on sample ``j`` whatever the absolute time.
        """
        n = self.table.shape[1]
        k = np.floor(((t0 - self.t0) + offsets) * self.rate + 1e-6).astype(np.int64)
        out = self.table[:, np.clip(k, 0, n - 1)] if n else np.repeat(self.pre[:, None], len(offsets), 1)
        before = k < 0
        if before.any():
            out[:, before] = self.pre[:, None]
        return out


@dataclass
class _Task:
    name: str
    channels: list[_Channel] = field(default_factory=list)
    timing_type: int = _ON_DEMAND
    rate: float = 1000.0  # requested rate, samples/s
    clock_source: str = ""
    active_edge: int = _RISING
    sample_mode: int = _FINITE
    samps_per_chan: int = 1000
    trigger_type: int = _TRIG_NONE
    trigger_source: str = ""
    trigger_edge: int = _RISING
    regen_mode: int = _ALLOW_REGEN
    channels_to_read: str = ""
    # AO buffer, (n_channels, m) volts; replace_on_write: the next write starts a new table.
    buffer: np.ndarray | None = None
    replace_on_write: bool = True
    # Run state. started: start was called (or auto-start); begun: the trigger/clock arrived.
    started: bool = False
    begun: bool = False
    done: bool = False
    error: DaqmxFault | None = None
    t0: float = 0.0
    eff_rate: float = 0.0  # actual clock rate while running, samples/s
    ticks: int = 0  # samples generated/acquired so far
    data: np.ndarray | None = None  # AI: (n_channels, ticks) volts
    read_pos: int = 0
    auto_started_by_read: bool = False

    _arrays: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def channel_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(device channel index, min V, max V)`` of the task's channels, each ``(n_chans,)``
        (worked out again only when channels were added)."""
        if self._arrays is None or self._arrays[0] != len(self.channels):
            self._arrays = (len(self.channels), np.array([c.index for c in self.channels], dtype=np.intp),
                            np.array([c.min_val for c in self.channels]), np.array([c.max_val for c in self.channels]))
        return self._arrays[1], self._arrays[2], self._arrays[3]

    @property
    def kind(self) -> Literal["ao", "ai"] | None:
        return self.channels[0].kind if self.channels else None

    @property
    def device(self) -> str | None:
        return self.channels[0].device if self.channels else None

    @property
    def n_chans(self) -> int:
        return len(self.channels)

    @property
    def running(self) -> bool:
        return self.started

    @property
    def hw_timed(self) -> bool:
        return self.timing_type == _SAMPLE_CLOCK

    def terminal(self, signal_name: str) -> str:
        """``/Dev1/ao/SampleClock`` style name of this task's ``SampleClock``/``StartTrigger``."""
        return f"/{self.device}/{self.kind}/{signal_name}"


_TERMINAL_RE = re.compile(r"^/?(?P<dev>[^/]+)/(?P<kind>ao|ai)/(?P<sig>SampleClock|StartTrigger)$", re.I)
_CHANNEL_RE = re.compile(r"^/?(?P<dev>[^/]+)/(?P<kind>ao|ai)(?P<idx>\d+)$", re.I)

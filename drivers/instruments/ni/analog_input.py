"""An NI-DAQmx analog-input module (e.g. PXIe-6363 / 6375) reading photodiode transimpedance
amplifiers, as a power meter: port p (from 1) is AI channel p - 1.

A photodiode of responsivity R (A/W) behind an amplifier of gain G (V/A) reads ``V = V_dark + G R P``,
so ``P = (V - V_dark) / (G R)`` W, per channel (``settings``). Two tasks on the same channels: an
on-demand one (``fetch_power_W``: one conversion of every port) and a finite, sample-clocked one for
a sweep (``arm``, ``start``, ``fetch_block_W``, ``stop``), clocked by ``timing.sample_clock`` (e.g.
the modulators' ``/Dev1/ao/SampleClock``) and started by ``timing.start_trigger``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from nidaqmx.constants import AcquisitionType, TerminalConfiguration
from nidaqmx.errors import DaqError, RpcError
from nidaqmx.stream_readers import AnalogMultiChannelReader
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ffzero_lab.rig import HardwareTiming, InstrumentIdentity, RigConfig

from .session import ClockedTask, DaqmxSession, daq_failure

_DAQ_FAILURES = (DaqError, RpcError)
_TERMINALS = {"default": TerminalConfiguration.DEFAULT, "rse": TerminalConfiguration.RSE,
              "nrse": TerminalConfiguration.NRSE, "differential": TerminalConfiguration.DIFF,
              "pseudo_differential": TerminalConfiguration.PSEUDO_DIFF}


class NiInputSettings(BaseModel):
    """``settings`` of an NI analog-input module reading photodiode amplifiers."""

    model_config = ConfigDict(extra="forbid")

    grpc: str | None = Field(None, description="host:port of an NI gRPC Device Server; null: the local NI-DAQmx "
                             "driver.")
    ports: int = Field(ge=1, le=1024, description="Photodiode channels read: ports 1..ports are AI channels "
                       "0..ports-1.")
    physical_channels: str | None = Field(None, description="DAQmx physical channels, e.g. 'PXI1Slot3/ai0:31'; "
                                          "null: '<resource>/ai0:<ports - 1>'.")
    range_V: float = Field(10.0, gt=0, description="Input range +-range_V, V.")
    terminal: Literal["default", "rse", "nrse", "differential", "pseudo_differential"] = Field(
        "default", description="Input terminal configuration.")
    responsivity_A_per_W: float | list[float] = Field(1.0, description="Photodiode responsivity, A/W (one, or "
                                                      "one per port).")
    tia_gain_V_per_A: float | list[float] = Field(1e4, description="Transimpedance gain, V/A (one, or one per "
                                                  "port).")
    dark_V: float | list[float] = Field(0.0, description="Reading in the dark, V (one, or one per port).")
    timeout_s: float = Field(10.0, gt=0, description="Wait for an on-demand reading, s.")

    @model_validator(mode="after")
    def _per_port(self) -> "NiInputSettings":
        for field in ("responsivity_A_per_W", "tia_gain_V_per_A", "dark_V"):
            value = getattr(self, field)
            if isinstance(value, list) and len(value) != self.ports:
                raise ValueError(f"{field}: {len(value)} values for {self.ports} ports")
            if field != "dark_V" and not np.all(np.asarray(value, dtype=float) > 0):
                raise ValueError(f"{field} must be positive")
        return self

    def per_port(self, field: str) -> NDArray[np.float64]:
        """``(ports,)`` values of ``field``."""
        return np.broadcast_to(np.asarray(getattr(self, field), dtype=np.float64), (self.ports,)).copy()


class NiAnalogInput(ClockedTask):
    """AI channels of an NI-DAQmx module as a power meter (see the module docstring).

    Args:
        session: where its tasks live.
        name: the instrument's name.
        settings: validated settings.
        physical: the DAQmx physical channels.
        timing: its hardware timing (None: on-demand readings only).
    """

    kind: ClassVar[Literal["power_meter"]] = "power_meter"
    visa: ClassVar[bool] = False
    settings_model: ClassVar[type[BaseModel]] = NiInputSettings
    resource_options: ClassVar[dict[str, Any]] = {}
    serial_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, session: DaqmxSession, name: str, settings: NiInputSettings, physical: str,
                 timing: HardwareTiming | None) -> None:
        self.session, self.name, self.settings, self.physical, self.timing = session, name, settings, physical, timing
        self.transfers = 0
        #: volts -> watts: P = (V - dark) * scale, per port
        self._dark = settings.per_port("dark_V")[:, None]
        gain = settings.per_port("tia_gain_V_per_A") * settings.per_port("responsivity_A_per_W")
        self._scale = (1.0 / gain)[:, None]
        terminal = _TERMINALS[settings.terminal]
        try:
            self._now = session.task("ai-now")
            self._now.ai_channels.add_ai_voltage_chan(physical, terminal_config=terminal, min_val=-settings.range_V,
                                                      max_val=settings.range_V)
            self._clocked = session.task("ai-sweep")
            self._clocked.ai_channels.add_ai_voltage_chan(physical, terminal_config=terminal,
                                                          min_val=-settings.range_V, max_val=settings.range_V)
            self.transfers += 4
        except _DAQ_FAILURES as exc:
            session.close()
            raise daq_failure(exc, name, f"opening {physical} on {session.where}") from None
        self._now_reader = AnalogMultiChannelReader(self._now.in_stream)
        self._reader = AnalogMultiChannelReader(self._clocked.in_stream)
        self._now_reader.verify_array_shape = self._reader.verify_array_shape = False  # else property calls each read
        self._one = np.empty(settings.ports)
        self._block = np.empty((settings.ports, 0))
        self._configured: tuple[float, int] | None = None
        self._triggered = False

    @classmethod
    def open(cls, name: str, rig: RigConfig) -> "NiAnalogInput":
        """The driver for AI instrument ``name`` of ``rig`` (its ``resource`` is the DAQmx device name)."""
        inst = rig.instruments[name]
        settings = NiInputSettings.model_validate(inst.settings)
        physical = settings.physical_channels or f"{inst.resource}/ai0:{settings.ports - 1}"
        return cls(DaqmxSession(name, settings.grpc), name, settings, physical, inst.hardware)

    @classmethod
    def from_config(cls, resource: Any, name: str, rig: RigConfig) -> "NiAnalogInput":
        """As :meth:`open` (there is no VISA resource; ``resource`` is not used)."""
        return cls.open(name, rig)

    def identify(self) -> InstrumentIdentity:
        """What the channels are (ports = AI channels read)."""
        return InstrumentIdentity(f"NI-DAQmx AI {self.physical} on {self.session.where}", "NI-DAQmx AI",
                                  self.settings.ports)

    def configure(self) -> None:
        """Nothing to send: channels, range and terminals were set when the tasks were made."""

    def _watts(self, volts: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(ports, n)`` V -> ``(n, ports)`` W."""
        return ((volts - self._dark) * self._scale).T

    def fetch_power_W(self) -> NDArray[np.float64]:
        """One on-demand conversion of every port, ``(ports,)`` W."""
        try:
            self._now_reader.read_one_sample(self._one, timeout=self.settings.timeout_s)
        except _DAQ_FAILURES as exc:
            raise daq_failure(exc, self.name, "reading every port on demand") from None
        self.transfers += 1
        return self._watts(self._one[:, None])[0]

    # -- sweeps (ClockedInput) -------------------------------------------------------------------
    def arm(self, samples: int, rate_Sps: float) -> None:
        """Prepare ``samples`` per port at ``rate_Sps`` on the timing's clock and start trigger."""
        if self._configured == (rate_Sps, samples):
            return
        timing = self.timing
        try:
            self._clocked.timing.cfg_samp_clk_timing(rate_Sps, source=timing.sample_clock if timing else "",
                                                     sample_mode=AcquisitionType.FINITE, samps_per_chan=samples)
            self.transfers += 1
            if not self._triggered and timing is not None and timing.start_trigger:
                self._clocked.triggers.start_trigger.cfg_dig_edge_start_trig(timing.start_trigger)
                self.transfers += 1
            self._triggered = True
        except _DAQ_FAILURES as exc:
            raise daq_failure(exc, self.name, f"arming {samples} samples at {rate_Sps:.6g} S/s", timing) from None
        self._block = np.empty((self.settings.ports, samples))
        self._configured = (rate_Sps, samples)

    def start(self) -> None:
        """Start (armed: it waits for its start trigger)."""
        try:
            self._clocked.start()
        except _DAQ_FAILURES as exc:
            self._configured = None
            raise daq_failure(exc, self.name, "starting its acquisition", self.timing) from None
        self.transfers += 1

    def fetch_block_W(self, timeout_s: float) -> NDArray[np.float64]:
        """The whole acquisition in one read, ``(samples, ports)`` W."""
        samples = self._block.shape[1]
        try:
            self._reader.read_many_sample(self._block, number_of_samples_per_channel=samples, timeout=timeout_s)
        except _DAQ_FAILURES as exc:
            raise daq_failure(exc, self.name, f"reading {samples} samples per port", self.timing) from None
        self.transfers += 1
        return self._watts(self._block)

    def close(self) -> None:
        """Clear the tasks."""
        self.session.close()

"""An NI-DAQmx analog-output module (e.g. PXIe-6739: 64 channels, 16 bit, 1 MS/s) as a heater DAC
or an input-modulator driver.

Two tasks on the same channels: an on-demand one for single writes (``set_voltages_V``, the safe
state) and a finite, sample-clocked, non-regenerating one for a sweep's table (``load_table``,
then ``start``, ``finish``, ``stop``): ``timing.sample_clock`` its clock (``''`` the module's own),
``timing.start_trigger`` the terminal that starts it (e.g. ``/Dev1/ao/StartTrigger`` of the
modulators' module; ``''``: it starts the sweep itself).

Every value goes out as the DAC's own code (``WriteRaw``, interleaved int16, one transfer per
table), from the channel's scaling ``code = c0 + c1 V`` (``DAQmx_AO_DevScalingCoeff``): of the
two codes around a voltage, the one nearer 0 V, so no heater draws more than asked. The table's
voltages on those codes are what the limits and the power budget are checked against
(:meth:`HeaterDriver.check_table`) before a sample is written.

An AO module cannot report its outputs. The first time the rig asks for them (when it opens the
instruments), the driver writes every channel's safe value, the one state it can vouch for, and
from then on reports what it wrote.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from nidaqmx.constants import AcquisitionType, RegenerationMode
from nidaqmx.errors import DaqError, RpcError
from nidaqmx.stream_writers._channel_writer_base import ChannelWriterBase
from numpy.typing import NDArray
from pydantic import Field

from ffzero_lab.rig import HardwareTiming, InstrumentIdentity, PowerBudget, RigConfig

from ..heater import HeaterDriver, HeaterSettings
from ..limits import HeaterLimits, Unit
from .session import ClockedTask, DaqmxSession, daq_failure

_DAQ_FAILURES = (DaqError, RpcError)


class NiOutputSettings(HeaterSettings):
    """``settings`` of an NI analog-output module."""

    grpc: str | None = Field(None, description="host:port of an NI gRPC Device Server; null: the local NI-DAQmx "
                             "driver.")
    physical_channels: str | None = Field(None, description="DAQmx physical channels, e.g. 'PXI1Slot2/ao0:63'; "
                                          "null: '<resource>/ao0:<count - 1>'.")
    timeout_s: float = Field(10.0, gt=0, description="Wait for a single write, s.")


class _RawWriter(ChannelWriterBase):
    """Raw DAC codes, interleaved by scan, in one ``WriteRaw`` (nidaqmx's stream-writer pattern)."""

    def write_int16(self, codes: NDArray[np.int16], timeout_s: float) -> int:
        """Write ``(n, channels)`` codes; returns samples per channel written."""
        auto_start = bool(self._auto_start) if isinstance(self._auto_start, bool) else False
        return self._interpreter.write_raw(self._handle, codes.shape[0], auto_start, timeout_s,
                                           np.ascontiguousarray(codes, dtype=np.int16))


class NiAnalogOutput(ClockedTask, HeaterDriver):
    """Channels ``0..count-1`` of an NI-DAQmx AO module (see the module docstring).

    Args:
        session: where its tasks live.
        name, limits, budget, settings: as :class:`HeaterDriver`.
        physical: the DAQmx physical channels.
        timing: its hardware timing (None: single writes only).
    """

    visa: ClassVar[bool] = False
    resource_options: ClassVar[dict[str, Any]] = {}
    settings_model = NiOutputSettings
    decimals: ClassVar[dict[str, int]] = {"V": 6, "mA": 3}

    def __init__(self, session: DaqmxSession, name: str, limits: HeaterLimits, budget: PowerBudget,
                 settings: NiOutputSettings, physical: str, timing: HardwareTiming | None) -> None:
        super().__init__(session, name, limits, budget, settings)
        self.session, self.physical, self.timing = session, physical, timing
        self.transfers = 0  # block transfers and task operations (calls to the driver or server)
        low = float(min(limits.voltage_min_V.min(), 0.0))
        high = float(limits.voltage_max_V.max())
        try:
            self._now = session.task("ao-now")
            self._now.ao_channels.add_ao_voltage_chan(physical, min_val=low, max_val=high)
            self._clocked = session.task("ao-sweep")
            self._clocked.ao_channels.add_ao_voltage_chan(physical, min_val=low, max_val=high)
            coeff = self._now.ao_channels[self._now.channel_names[0]].ao_dev_scaling_coeff
            self.transfers += 5
        except _DAQ_FAILURES as exc:
            session.close()
            raise daq_failure(exc, name, f"opening {physical} on {session.where}") from None
        self._c0, self._c1 = float(coeff[0]), float(coeff[1])
        self._now_writer = _RawWriter(self._now.out_stream, auto_start=True)
        self._writer = _RawWriter(self._clocked.out_stream, auto_start=False)
        self._held_V: NDArray[np.float64] | None = None  # what each channel puts out, V (None: unknown)
        self._configured: tuple[float, int] | None = None  # (rate, samples) of the clocked task
        self._grid: tuple[Any, Any] = (None, None)  # the last table put on the codes, and its codes
        self._checked: tuple[Any, Any] | None = None  # the last table check_table passed, and its channels
        self._triggered = False
        self.settings: NiOutputSettings

    @classmethod
    def open(cls, name: str, rig: RigConfig, budget: PowerBudget | None = None) -> "NiAnalogOutput":
        """The driver for AO instrument ``name`` of ``rig`` (its ``resource`` is the DAQmx device name)."""
        inst = rig.instruments[name]
        settings = NiOutputSettings.model_validate(inst.settings)
        limits = HeaterLimits.from_channel_limits(rig.heater_channel_limits(name))
        physical = settings.physical_channels or f"{inst.resource}/ao0:{limits.channels - 1}"
        return cls(DaqmxSession(name, settings.grpc), name, limits, budget or PowerBudget(rig.power_budget_W),
                   settings, physical, inst.hardware)

    @classmethod
    def from_config(cls, resource: Any, name: str, rig: RigConfig,
                    budget: PowerBudget | None = None) -> "NiAnalogOutput":
        """As :meth:`open` (there is no VISA resource; ``resource`` is not used)."""
        return cls.open(name, rig, budget)

    def identify(self) -> InstrumentIdentity:
        """What the channels are (an AO module reports no identity string through DAQmx tasks)."""
        return InstrumentIdentity(f"NI-DAQmx AO {self.physical} on {self.session.where}", "NI-DAQmx AO",
                                  self.limits.channels)

    # -- the DAC's codes ---------------------------------------------------------------------------
    def _codes(self, volts: NDArray[np.float64]) -> NDArray[np.int16]:
        """The DAC code of each voltage: ``c0 + c1 V`` rounded toward the code of 0 V (down for V >= 0,
        up below), so no output is farther from 0 V than asked by as much as a code."""
        x = volts * self._c1
        x += self._c0
        if volts.size and volts.min() >= 0.0:  # heaters: one rounding for all
            np.floor(x, out=x)
        else:
            x = np.where(volts >= 0.0, np.floor(x), np.ceil(x))
        np.clip(x, -32768, 32767, out=x)
        return x.astype(np.int16)

    def _code_volts(self, codes: NDArray[np.int16]) -> NDArray[np.float64]:
        out = codes.astype(np.float64)
        out -= self._c0
        out *= 1.0 / self._c1
        return out

    def _on_grid(self, table_V: NDArray[np.float64]) -> NDArray[np.float64]:
        """Voltages on the DAC's codes, V; NaN stays NaN (the limit check names it). The codes of the
        last table are kept for :meth:`load_table`."""
        finite = np.isfinite(table_V)
        if finite.all():
            codes = self._codes(table_V)
            q = self._code_volts(codes)
            self._grid = (q, codes)
            return q
        return np.where(finite, self._code_volts(self._codes(np.where(finite, table_V, 0.0))), table_V)

    # -- single writes ------------------------------------------------------------------------------
    def _held(self) -> NDArray[np.float64]:
        if self._held_V is None:  # unknown: put out the safe values, the state the driver can vouch for
            self._put_now(self.limits.safe_V.copy())
        assert self._held_V is not None
        return self._held_V

    def _put_now(self, volts: NDArray[np.float64]) -> None:
        codes = self._codes(volts)
        try:
            self._now_writer.write_int16(codes[None], self.settings.timeout_s)
        except _DAQ_FAILURES as exc:
            self._held_V = None
            raise daq_failure(exc, self.name, "writing its outputs on demand") from None
        self.transfers += 1
        self._held_V = self._code_volts(codes)

    def _write_values(self, channels: NDArray[np.intp], values: NDArray[np.float64], unit: Unit) -> None:
        volts = self._held().copy()
        volts[channels] = values if unit == "V" else values * self.limits.resistance_ohm[channels] / 1e3
        self._put_now(volts)
        assert self._held_V is not None
        self._hold_row(channels, self._held_V[channels])  # on the DAC's codes: at most what was checked

    def _read_voltages_V(self, channels: NDArray[np.intp]) -> NDArray[np.float64]:
        return self._held()[channels].copy()

    # -- tables (ClockedOutput) ----------------------------------------------------------------------
    def check_table(self, channels: Any, table_V: Any) -> NDArray[np.float64]:
        """As :meth:`HeaterDriver.check_table`, on the DAC's codes; the table it returns is what
        :meth:`load_table` then writes without checking it again."""
        self._checked = None
        q = super().check_table(channels, table_V)
        self._checked = (q, self._select(channels))
        return q

    def load_table(self, channels: Any, table_V: Any, rate_Sps: float) -> None:
        """Check, then write ``(n, k)`` voltages for ``channels`` to be put out at ``rate_Sps`` (the
        other channels hold their values); started by :meth:`start` or the start trigger."""
        sel = self._select(channels)
        checked = self._checked
        if checked is not None and checked[0] is table_V and checked[1] is sel:  # as check_table returned it
            q = checked[0]
        else:
            q = self.check_table(sel.channels, table_V)
        codes = self._grid[1] if self._grid[0] is q else self._codes(q)
        held = self._held()
        peak_W = self.power_W + float(np.sum(np.max(q * q, axis=0) / sel.resistance_ohm))
        if isinstance(sel.index, slice) and sel.index == slice(0, self.channels) and q.shape[0] > 1:
            full = codes
        else:
            full = np.repeat(self._codes(held)[None], max(q.shape[0], 2), axis=0)
            full[:q.shape[0], sel.channels] = codes
            if q.shape[0] == 1:  # a finite generation takes two samples at least: hold the one
                full[1] = full[0]
        timing = self.timing
        doing = f"loading a table of {full.shape[0]} samples at {rate_Sps:.6g} S/s"
        try:
            if self._configured != (rate_Sps, full.shape[0]):
                self._clocked.timing.cfg_samp_clk_timing(
                    rate_Sps, source=timing.sample_clock if timing else "", sample_mode=AcquisitionType.FINITE,
                    samps_per_chan=full.shape[0])
                self.transfers += 1
                if not self._triggered:
                    if timing is not None and timing.start_trigger:
                        self._clocked.triggers.start_trigger.cfg_dig_edge_start_trig(timing.start_trigger)
                    self._clocked.out_stream.regen_mode = RegenerationMode.DONT_ALLOW_REGENERATION
                    self._triggered = True
                    self.transfers += 2
                self._configured = (rate_Sps, full.shape[0])
            self._writer.write_int16(full, self.settings.timeout_s)
            self.transfers += 1
        except _DAQ_FAILURES as exc:
            self._configured = None
            raise daq_failure(exc, self.name, doing, timing) from None
        self._held_V = self._code_volts(full[-1])
        self._hold_row(sel.channels, q[-1], peak_W)

    def start(self) -> None:
        """Start the table (armed, when it waits for its start trigger)."""
        self._task_call(self._clocked.start, "starting its sweep")

    def finish(self, timeout_s: float) -> None:
        """Wait until the table has been put out (it then holds its last row)."""
        self._task_call(lambda: self._clocked.wait_until_done(timeout_s), f"waiting up to {timeout_s:.3g} s "
                        "for its sweep")
        self.budget.record_total(self.name, self.power_W)

    def _task_call(self, call: Any, doing: str) -> None:
        try:
            call()
        except _DAQ_FAILURES as exc:
            raise daq_failure(exc, self.name, doing, self.timing) from None
        self.transfers += 1

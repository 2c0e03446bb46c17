"""The models of ``instruments.yaml`` (pydantic; unknown keys rejected everywhere) and the
cross-field checks pydantic cannot express: references between sections, channel reuse, the
phases a mesh has, the safe state against the power budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from ffzero_lab.photonics.design import mesh_phase_names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelLimits(_Strict):
    """Limits and electrical facts of one heater channel."""

    voltage_min_V: float = Field(0.0, description="Lowest voltage the driver may write, V.")
    voltage_max_V: float = Field(gt=0, description="Highest voltage the driver may write, V.")
    current_max_mA: float = Field(gt=0, description="Highest heater current, mA; also caps the voltage at I*R.")
    resistance_ohm: float = Field(gt=0, description="Heater resistance, ohm; heater power is V^2/R.")
    safe_V: float = Field(0.0, description="Value the channel returns to in the safe state, V.")

    @model_validator(mode="after")
    def _consistent(self) -> "ChannelLimits":
        if self.voltage_min_V >= self.voltage_max_V:
            raise ValueError(f"voltage_min_V {self.voltage_min_V} must be below voltage_max_V {self.voltage_max_V}")
        if not self.voltage_min_V <= self.safe_V <= self.voltage_max_V:
            raise ValueError(f"safe_V {self.safe_V} is outside [{self.voltage_min_V}, {self.voltage_max_V}]")
        if abs(self.safe_V) / self.resistance_ohm * 1e3 > self.current_max_mA:
            raise ValueError(f"safe_V {self.safe_V} drives more than current_max_mA {self.current_max_mA}")
        return self

    @property
    def safe_power_W(self) -> float:
        """Heater power at the safe value, W."""
        return self.safe_V**2 / self.resistance_ohm


class ChannelLimitsOverride(_Strict):
    """Per-channel changes to ``channels.default``; unset fields keep the default."""

    voltage_min_V: float | None = None
    voltage_max_V: float | None = Field(None, gt=0)
    current_max_mA: float | None = Field(None, gt=0)
    resistance_ohm: float | None = Field(None, gt=0)
    safe_V: float | None = None


class HeaterChannels(_Strict):
    """``channels``: how many channels of a heater instrument are used and their limits."""

    count: int = Field(ge=1, description="Channels in use, numbered 0..count-1.")
    default: ChannelLimits = Field(description="Limits of every channel not overridden.")
    overrides: dict[int, ChannelLimitsOverride] = Field(
        default_factory=dict, description="Channel number -> fields that differ from the default."
    )

    @model_validator(mode="after")
    def _overrides_valid(self) -> "HeaterChannels":
        for channel in self.overrides:
            if not 0 <= channel < self.count:
                raise ValueError(f"overrides: channel {channel} is outside 0..{self.count - 1}")
            try:
                self.limits(channel)
            except ValidationError as exc:
                raise ValueError(f"overrides: channel {channel}: {exc.errors()[0]['msg']}") from None
        return self

    def limits(self, channel: int) -> ChannelLimits:
        """The limits of one channel: the default with its override applied."""
        override = self.overrides.get(channel)
        if override is None:
            return self.default
        changes = override.model_dump(exclude_none=True)
        return ChannelLimits.model_validate({**self.default.model_dump(), **changes})

    def all_limits(self) -> list[ChannelLimits]:
        """Limits of channels 0..count-1."""
        return [self.limits(channel) for channel in range(self.count)]


class HardwareTiming(_Strict):
    """``timing`` of a sample-clocked instrument (e.g. an NI-DAQmx analog-output or analog-input
    module): the rig plays a whole sweep on it as one block (:mod:`ffzero_lab.rig.plan`).

    The instrument that drives a mesh's input modulators and has no ``start_trigger`` is the
    sweep's *master*: its sample clock at ``sample_rate_Sps`` sets the pace, and its start starts
    everything else (started last). Detectors take one sample per tick of ``sample_clock`` (the
    master's, e.g. ``/Dev1/ao/SampleClock``); heaters put out one sample per phase setting, held
    for the ``dropped_samples + inputs x samples_per_input`` ticks of that setting.
    """

    mode: Literal["hardware"] = Field(description="'hardware': sample-clocked (a whole sweep per block).")
    sample_rate_Sps: float | None = Field(
        None, gt=0, description="Sample clock rate, samples/s (S/s). Required for the master (input modulators); "
        "heaters put out one sample per setting at rate / (dropped_samples + inputs x samples_per_input).")
    sample_clock: str = Field("", description="Sample clock source terminal, e.g. '/Dev1/ao/SampleClock'; "
                              "'' the module's own (onboard) clock.")
    start_trigger: str = Field("", description="Start trigger terminal, e.g. '/Dev1/ao/StartTrigger' or "
                               "'/Dev1/PFI0'; '' the instrument starts the sweep itself (the master).")
    samples_per_input: int = Field(1, ge=1, le=1_000_000, description="Samples per input vector (the detectors' "
                                   "readings of an input are averaged over them).")
    dropped_samples: int | None = Field(
        None, ge=0, le=10_000_000, description="Samples taken after each heater change that are not used while "
        "the heaters settle; null: ceil(settle_time_s x sample_rate_Sps).")


Timing = Literal["software"] | HardwareTiming


class InstrumentConfig(_Strict):
    """One instrument: where it is, which driver speaks to it, and (heaters) its channels."""

    resource: str = Field(
        description="VISA resource string, e.g. 'ASRL/dev/ttyUSB0::INSTR' or 'TCPIP::10.0.0.5::inst0::INSTR'."
    )
    driver: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$|^[A-Za-z0-9][\w.-]*$",
        description="Driver: an entry point of 'ffzero_lab.instruments' (e.g. 'qontrol') or a class as "
        "'module:Class' (e.g. 'drivers.instruments.qontrol:Qontrol').",
    )
    timeout_ms: int = Field(2000, ge=1, description="How long to wait for a reply, ms.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Driver settings; validated by the driver.")
    channels: HeaterChannels | None = Field(None, description="Heater drivers only: channels in use and their limits.")
    timing: Timing = Field(
        "software", description="'software': every value set and read by its own command; or a mapping with "
        "mode: hardware (a sample-clocked instrument whose driver plays a whole sweep as one block).")

    @property
    def hardware(self) -> HardwareTiming | None:
        """The hardware timing, or None when software-timed."""
        return self.timing if isinstance(self.timing, HardwareTiming) else None


class ChannelRef(_Strict):
    """A heater channel: ``{instrument: q8, channel: 3}``."""

    instrument: str
    channel: int = Field(ge=0)


class PortRef(_Strict):
    """A power-meter port: ``{instrument: meter, port: 1}``."""

    instrument: str
    port: int = Field(ge=1)


PhaseName = Annotated[str, StringConstraints(pattern=r"^(theta|phi)\[\d+,\d+\]$|^gamma\[\d+\]$")]


class LayerMap(_Strict):
    """One mesh: which channel drives each phase and which port reads each output mode."""

    name: str | None = None
    modes: int = Field(ge=2, description="N, modes of the rectangular mesh.")
    phases: dict[PhaseName, ChannelRef] = Field(
        default_factory=dict,
        description="'theta[column,slot]', 'phi[column,slot]' or 'gamma[mode]' -> heater channel.",
    )
    input: Literal["modulators", "optical"] = Field(
        "modulators",
        description="How light reaches this mesh: 'modulators' (its own input modulators set every mode's "
        "amplitude; the host sets them from what the mesh before detected) or 'optical' (on the chip, the light "
        "the mesh before passes on, through the chip's activation; no modulators of its own).",
    )
    modulators: dict[int, ChannelRef] = Field(
        default_factory=dict, description="Input mode -> the heater channel of its input modulator "
        "(none for an optically fed mesh)."
    )
    detectors: dict[int, PortRef] = Field(default_factory=dict, description="Output mode -> power-meter port.")
    unmapped: Literal["refuse", "fixed"] = Field(
        "refuse",
        description="A phase of the mesh that 'phases' maps to no channel: 'refuse' (the default: a phase left "
        "out by mistake would silently stay untrained) or 'fixed' (the chip has no heater there; the phase "
        "keeps its fabricated value and is not trained).",
    )


class RigConfig(_Strict):
    """A whole ``instruments.yaml``."""

    name: str | None = None
    visa_library: str = Field(
        "",
        description="pyvisa backend: '' (the system VISA), '@py' (pyvisa-py), or 'devices.yaml@sim' (pyvisa-sim; "
        "a relative path is read from this file's folder).",
    )
    calibration: Path | None = Field(None, description="Phase calibration file, relative to this file's folder.")
    power_budget_W: float = Field(gt=0, description="Total electrical power all heaters together may draw, W.")
    settle_time_s: float = Field(0.001, ge=0, description="Wait after a heater write before reading detectors, s.")
    input_settle_time_s: float | None = Field(
        None, ge=0, description="Wait after setting the input modulators before reading detectors, s; "
        "null: settle_time_s.")
    retries: int = Field(
        2, ge=0, description="Times a command that failed for a passing reason (timeout, dropped connection, "
        "communication error) is sent again, after reopening its instrument.")
    instruments: dict[str, InstrumentConfig] = Field(min_length=1, description="Name -> instrument.")
    layers: list[LayerMap] = Field(default_factory=list, description="One entry per trainable mesh, in order.")

    def heater_channel_limits(self, name: str) -> list[ChannelLimits]:
        """Limits of every channel of heater instrument ``name``."""
        channels = self.instruments[name].channels
        if channels is None:
            raise ValueError(f"instrument {name!r} has no channels section")
        return channels.all_limits()

    def ports_used(self, name: str) -> set[int]:
        """Power-meter ports of instrument ``name`` that some layer reads."""
        return {p.port for layer in self.layers for p in layer.detectors.values() if p.instrument == name}

    def problems(self) -> Iterator[tuple[str, str]]:
        """Cross-field problems as ``(field, message)``: references, channel reuse, budget."""
        used_channels: dict[tuple[str, int], str] = {}
        used_ports: dict[tuple[str, int], str] = {}
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}]"
            if layer.input == "optical":
                if i == 0:
                    yield f"{where}.input", "the first mesh has no mesh before it to feed it light: use 'modulators'"
                elif layer.modes != self.layers[i - 1].modes:
                    yield f"{where}.modes", (f"an optically fed mesh takes every mode of the mesh before it "
                                             f"({self.layers[i - 1].modes}), not {layer.modes}")
                if layer.modulators:
                    yield f"{where}.modulators", "an optically fed mesh has no input modulators of its own"
            refs = [(f"{where}.phases.{key}", key, ref) for key, ref in layer.phases.items()]
            refs += [
                (f"{where}.modulators[{mode}]", f"modulator[{mode}]", ref) for mode, ref in layer.modulators.items()
            ]
            for field, key, ref in refs:
                yield from _phase_problems(field, key, layer.modes)
                yield from self._channel_problems(field, ref, used_channels)
            if layer.phases and layer.unmapped == "refuse":
                every = mesh_phase_names(layer.modes)
                left = [name for name in every if name not in layer.phases]
                if left:
                    yield f"{where}.phases", (f"{len(left)} of the mesh's {len(every)} phases map to no heater "
                                              f"channel (first: {left[0]!r}); map them, or set 'unmapped: fixed' "
                                              "if the chip has no heater there")
            for mode, port in layer.detectors.items():
                field = f"{where}.detectors[{mode}]"
                if not 0 <= mode < layer.modes:
                    yield field, f"mode {mode} is outside 0..{layer.modes - 1}"
                if port.instrument not in self.instruments:
                    yield f"{field}.instrument", f"unknown instrument {port.instrument!r}"
                elif self.instruments[port.instrument].channels is not None:
                    yield f"{field}.instrument", f"{port.instrument!r} is a heater instrument, not a power meter"
                key = (port.instrument, port.port)
                if key in used_ports:
                    yield f"{field}.port", f"port {port.port} already reads {used_ports[key]}"
                used_ports[key] = field
        yield from self._timing_problems()
        safe_W = sum(
            limits.safe_power_W
            for inst in self.instruments.values() if inst.channels is not None
            for limits in inst.channels.all_limits()
        )
        if safe_W > self.power_budget_W:
            yield (
                "power_budget_W",
                f"the safe state draws {safe_W:.6g} W, more than the budget {self.power_budget_W:.6g} W",
            )

    def _timing_problems(self) -> Iterator[tuple[str, str]]:
        """A mesh's modulators and detectors are all hardware-timed or all software-timed; a
        hardware-timed sweep has one master (modulators without a start trigger) with a rate."""
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}]"
            source = i
            while source > 0 and self.layers[source].input == "optical":
                source -= 1
            names = {ref.instrument for ref in self.layers[source].modulators.values()}
            names |= {ref.instrument for ref in layer.detectors.values()}
            known = [n for n in sorted(names) if n in self.instruments]
            hardware = [n for n in known if self.instruments[n].hardware is not None]
            if not hardware:
                continue
            if len(hardware) != len(known):
                software = [n for n in known if n not in hardware]
                yield (f"instruments.{software[0]}.timing", f"{where}: its modulators and detectors are played as "
                       f"one sweep: {software[0]!r} must be hardware-timed like {hardware[0]!r}")
                continue
            modulators = sorted({ref.instrument for ref in self.layers[source].modulators.values()})
            timings = {n: self.instruments[n].hardware for n in modulators if n in self.instruments}
            masters = [n for n, t in timings.items() if t is not None and not t.start_trigger]
            if len(masters) != 1:
                yield (f"instruments.{modulators[0]}.timing.start_trigger" if modulators else f"{where}.modulators",
                       f"{where}: exactly one modulator instrument starts the sweep (no start_trigger), "
                       f"found {len(masters)}")
                continue
            master = timings[masters[0]]
            if master is not None and master.sample_rate_Sps is None:
                yield (f"instruments.{masters[0]}.timing.sample_rate_Sps",
                       "the instrument that starts a sweep needs a sample rate, S/s")

    def _channel_problems(
        self, field: str, ref: ChannelRef, used: dict[tuple[str, int], str]
    ) -> Iterator[tuple[str, str]]:
        inst = self.instruments.get(ref.instrument)
        if inst is None:
            yield f"{field}.instrument", f"unknown instrument {ref.instrument!r}"
            return
        if inst.channels is None:
            yield f"{field}.instrument", f"{ref.instrument!r} has no channels section (not a heater instrument)"
            return
        if ref.channel >= inst.channels.count:
            yield (
                f"{field}.channel",
                f"channel {ref.channel} is outside 0..{inst.channels.count - 1} of {ref.instrument!r}",
            )
        key = (ref.instrument, ref.channel)
        if key in used:
            yield f"{field}.channel", f"{ref.instrument!r} channel {ref.channel} already drives {used[key]}"
        used[key] = field


_PHASE = re.compile(r"^(theta|phi)\[(\d+),(\d+)\]$|^gamma\[(\d+)\]$")


def _phase_problems(field: str, key: str, modes: int) -> Iterator[tuple[str, str]]:
    """Whether a phase name exists in a rectangular mesh of ``modes`` modes."""
    match = _PHASE.match(key)
    if match is None:  # a modulator
        return
    kind, column, slot, mode = match.groups()
    if kind is None:
        if int(mode) >= modes:
            yield field, f"gamma mode {mode} is outside 0..{modes - 1}"
        return
    column, slot = int(column), int(slot)
    slots = modes // 2 if column % 2 == 0 else (modes - 1) // 2
    if column >= modes:
        yield field, f"column {column} is outside 0..{modes - 1}"
    elif slots == 0:
        yield field, f"column {column} of a {modes}-mode mesh has no MZI"
    elif slot >= slots:
        yield field, f"column {column} of a {modes}-mode mesh has slots 0..{slots - 1}, not {slot}"

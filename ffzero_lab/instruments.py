"""``instruments.yaml``: the rig's instruments, channel maps and safety limits.

The file says which instruments the lab has (a VISA resource and a driver class each), which
heater channel drives which phase of which mesh, which power-meter port reads which output
mode, and the limits nothing may cross: per-channel voltage and current, a total electrical
power budget, and the safe value each channel returns to. It is validated once, at the edge,
by pydantic (unknown keys are rejected everywhere); errors name the file and the field.

Drivers live in ``drivers/instruments/`` and are named by dotted path ``module:Class`` (as in
QCoDeS station files); this package never imports a driver by name. A driver class provides
the :class:`InstrumentDriver` protocol below.

Units are in the names: ``_V`` volts, ``_mA`` milliamperes, ``_W`` watts, ``_ohm`` ohms,
``_s`` seconds, ``_ms`` milliseconds. Heater channels are numbered from 0, as the Qontrol
numbers them; power-meter ports from 1, as the Keysight N774x numbers them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol

import pyvisa
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from .contract import ParameterRangeError
from .errors import ConfigError
from .protocol import validation_error

# -- errors ---------------------------------------------------------------------------------


class InstrumentError(Exception):
    """An instrument replied with an error, replied nonsense, or did not answer.

    Args:
        message: what happened.
        instrument: the instrument's name in ``instruments.yaml``.
        channel: the channel (or port) concerned, if any.
        command: the command that was sent, if any.
    """

    def __init__(self, message: str, instrument: str, channel: int | None = None, command: str | None = None) -> None:
        self.message = message
        self.instrument = instrument
        self.channel = channel
        self.command = command
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"instrument {self.instrument!r}"
        if self.channel is not None:
            where += f" channel {self.channel}"
        sent = f" (command {self.command!r})" if self.command is not None else ""
        return f"{where}: {self.message}{sent}"


class LimitError(ParameterRangeError):
    """A requested value lies outside a channel's limit. Nothing was written.

    Args:
        instrument: the instrument's name.
        channel: the channel.
        value: the requested value, in ``unit``.
        limit: the limit it crosses, in ``unit``.
        unit: ``"V"``, ``"mA"`` or ``"W"``.
        what: which limit, e.g. ``"voltage_max_V"``.
    """

    def __init__(self, instrument: str, channel: int | None, value: float, limit: float, unit: str, what: str) -> None:
        self.instrument, self.channel, self.value, self.limit, self.unit, self.what = (
            instrument, channel, value, limit, unit, what)
        where = f"instrument {instrument!r}" + (f" channel {channel}" if channel is not None else "")
        side = "above" if value > limit else "below"
        super().__init__(
            f"{where}: {value:.6g} {unit} is {side} the limit {what} = {limit:.6g} {unit}; nothing was written"
        )


class PowerBudgetError(LimitError):
    """The heaters' total electrical power would exceed the rig's budget. Nothing was written."""

    def __init__(self, instrument: str, total_W: float, budget_W: float) -> None:
        super().__init__(instrument, None, total_W, budget_W, "W", "power_budget_W (all heaters together)")


# -- what a driver provides -----------------------------------------------------------------


@dataclass(frozen=True)
class InstrumentIdentity:
    """What an instrument says about itself.

    Attributes:
        identity: its raw identity reply (``id?``, ``*IDN?``).
        model: the model, e.g. ``Q8iv`` or ``N7744A``.
        channels: heater channels, or power-meter ports.
        voltage_range_V: ``(lowest, highest)`` output voltage of a heater driver, else None.
        current_max_mA: highest output current of a heater driver, else None.
    """

    identity: str
    model: str
    channels: int
    voltage_range_V: tuple[float, float] | None = None
    current_max_mA: float | None = None


class InstrumentDriver(Protocol):
    """A driver class named in ``instruments.yaml`` (``module:Class``).

    ``kind`` is ``"heater"`` (drives phase shifters; needs a ``channels`` section) or
    ``"power_meter"`` (reads detector ports). ``settings_model`` validates the instrument's
    ``settings``. ``resource_options`` are passed to pyvisa's ``open_resource`` (terminations);
    ``serial_options`` too, for serial (``ASRL``) resources only (baud rate).
    """

    kind: ClassVar[Literal["heater", "power_meter"]]
    settings_model: ClassVar[type[BaseModel]]
    resource_options: ClassVar[dict[str, Any]]
    serial_options: ClassVar[dict[str, Any]]

    @classmethod
    def from_config(cls, resource: Any, name: str, rig: "RigConfig") -> "InstrumentDriver":
        """Build the driver for instrument ``name`` of ``rig`` on an open pyvisa resource."""
        ...

    def identify(self) -> InstrumentIdentity:
        """Ask the instrument who it is (reads only)."""
        ...

    def close(self) -> None:
        """Close the resource."""
        ...


# -- the file's models ----------------------------------------------------------------------


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


class InstrumentConfig(_Strict):
    """One instrument: where it is, which driver speaks to it, and (heaters) its channels."""

    resource: str = Field(description="VISA resource string, e.g. 'ASRL/dev/ttyUSB0::INSTR' or 'TCPIP::10.0.0.5::inst0::INSTR'.")
    driver: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="Driver class as 'module:Class', e.g. 'drivers.instruments.qontrol:Qontrol'.",
    )
    timeout_ms: int = Field(2000, ge=1, description="How long to wait for a reply, ms.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Driver settings; validated by the driver.")
    channels: HeaterChannels | None = Field(None, description="Heater drivers only: channels in use and their limits.")


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
    modulators: dict[int, ChannelRef] = Field(
        default_factory=dict, description="Input mode -> the heater channel of its input modulator."
    )
    detectors: dict[int, PortRef] = Field(default_factory=dict, description="Output mode -> power-meter port.")


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
            refs = [(f"{where}.phases.{key}", key, ref) for key, ref in layer.phases.items()]
            refs += [(f"{where}.modulators[{mode}]", f"modulator[{mode}]", ref) for mode, ref in layer.modulators.items()]
            for field, key, ref in refs:
                yield from _phase_problems(field, key, layer.modes)
                yield from self._channel_problems(field, ref, used_channels)
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
        safe_W = sum(
            limits.safe_power_W
            for inst in self.instruments.values() if inst.channels is not None
            for limits in inst.channels.all_limits()
        )
        if safe_W > self.power_budget_W:
            yield "power_budget_W", f"the safe state draws {safe_W:.6g} W, more than the budget {self.power_budget_W:.6g} W"

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
            yield f"{field}.channel", f"channel {ref.channel} is outside 0..{inst.channels.count - 1} of {ref.instrument!r}"
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


# -- loading --------------------------------------------------------------------------------


def parse_rig(document: Any, source: str, base: Path | None = None) -> RigConfig:
    """Validate a parsed ``instruments.yaml`` document.

    Args:
        document: the parsed YAML.
        source: the file name used in error messages.
        base: folder that relative paths (``calibration``, a pyvisa-sim file) are read from.

    Raises:
        ConfigError: the first problem, naming ``source`` and the field.
    """
    if not isinstance(document, dict):
        raise ConfigError("instruments file must be a mapping", source)
    try:
        rig = RigConfig.model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
    for field, message in rig.problems():
        raise ConfigError(message, source, field)
    if base is not None:
        rig = _resolve_paths(rig, base)
    for name in rig.instruments:
        check_driver(rig, name, source)
    return rig


def load_rig(path: str | Path) -> RigConfig:
    """Read and validate an ``instruments.yaml`` file; drivers are imported and checked.

    Raises:
        ConfigError: missing file, bad YAML, or a field that does not validate.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _unreadable(exc, path) from None
    return parse_rig(document, str(path), path.resolve().parent)


def _unreadable(exc: OSError | yaml.YAMLError, path: Path) -> ConfigError:
    """Why an instruments file could not be read, naming the file (and the line for bad YAML)."""
    if isinstance(exc, FileNotFoundError):
        return ConfigError("instruments file not found", str(path))
    if isinstance(exc, OSError):
        return ConfigError(f"cannot read instruments file: {exc.strerror}", str(path))
    mark = getattr(exc, "problem_mark", None)
    line = f"line {mark.line + 1}" if mark is not None else None
    return ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", str(path), line)


def _resolve_paths(rig: RigConfig, base: Path) -> RigConfig:
    """Relative paths made relative to the file's folder."""
    changes: dict[str, Any] = {}
    if rig.calibration is not None and not rig.calibration.is_absolute():
        changes["calibration"] = base / rig.calibration
    library, at, backend = rig.visa_library.rpartition("@")
    if at and backend == "sim" and library and not Path(library).is_absolute():
        changes["visa_library"] = f"{base / library}@sim"
    return rig.model_copy(update=changes)


def resolve_driver_class(dotted: str, source: str = "instruments", field: str = "driver") -> type[InstrumentDriver]:
    """Import ``module:Class`` and check that it is an instrument driver.

    Raises:
        ConfigError: naming ``source`` and ``field`` when it cannot be imported or is no driver.
    """
    module_name, _, attribute = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import driver module {module_name!r}: {exc}", source, field) from None
    driver = getattr(module, attribute, None)
    if driver is None:
        raise ConfigError(f"module {module_name!r} has no attribute {attribute!r}", source, field)
    missing = [a for a in ("kind", "settings_model", "from_config", "identify") if not hasattr(driver, a)]
    if missing:
        raise ConfigError(f"{dotted!r} is not an instrument driver (no {', '.join(missing)})", source, field)
    return driver


def check_driver(rig: RigConfig, name: str, source: str) -> type[InstrumentDriver]:
    """Resolve instrument ``name``'s driver and validate its settings and kind against the file."""
    inst = rig.instruments[name]
    where = f"instruments.{name}"
    driver = resolve_driver_class(inst.driver, source, f"{where}.driver")
    try:
        driver.settings_model.model_validate(inst.settings)
    except ValidationError as exc:
        raise validation_error(exc, source, f"{where}.settings") from None
    if driver.kind == "heater" and inst.channels is None:
        raise ConfigError(f"{inst.driver} drives heaters: give a channels section", source, f"{where}.channels")
    if driver.kind != "heater" and inst.channels is not None:
        raise ConfigError(f"{inst.driver} is a {driver.kind}, it has no heater channels", source, f"{where}.channels")
    return driver


def rig_schema() -> dict[str, Any]:
    """JSON schema of ``instruments.yaml`` (for editor completion)."""
    schema = RigConfig.model_json_schema()
    schema["title"] = "ffzero-lab instruments.yaml"
    return schema


def limit_problems(name: str, inst: InstrumentConfig, identity: InstrumentIdentity, ports_used: set[int]) -> list[str]:
    """Where the file promises more than the instrument can do.

    Args:
        name: the instrument's name.
        inst: its section of the file.
        identity: what it said about itself.
        ports_used: power-meter ports the layers read.

    Returns:
        One message per problem; empty when the file fits the instrument.
    """
    problems: list[str] = []
    if inst.channels is None:
        missing = sorted(p for p in ports_used if p > identity.channels)
        if missing:
            problems.append(f"ports {missing} do not exist ({identity.model} has {identity.channels})")
        return problems
    if inst.channels.count > identity.channels:
        problems.append(f"channels.count {inst.channels.count} > the {identity.channels} channels of {identity.model}")
    for channel, limits in enumerate(inst.channels.all_limits()):
        if identity.voltage_range_V is not None:
            low, high = identity.voltage_range_V
            if limits.voltage_max_V > high:
                problems.append(f"channel {channel}: voltage_max_V {limits.voltage_max_V} > instrument full scale {high} V")
            if limits.voltage_min_V < low:
                problems.append(f"channel {channel}: voltage_min_V {limits.voltage_min_V} < instrument lowest {low} V")
        if identity.current_max_mA is not None and limits.current_max_mA > identity.current_max_mA:
            problems.append(
                f"channel {channel}: current_max_mA {limits.current_max_mA} > instrument full scale {identity.current_max_mA} mA"
            )
    return problems


# -- opening --------------------------------------------------------------------------------


def resource_manager(rig: RigConfig, source: str = "instruments") -> pyvisa.ResourceManager:
    """A pyvisa ResourceManager on the file's ``visa_library``.

    Raises:
        ConfigError: the VISA library cannot be loaded (naming ``visa_library``).
    """
    library, _, backend = rig.visa_library.rpartition("@")
    if backend == "sim" and library and not Path(library).is_file():
        raise ConfigError(f"pyvisa-sim file not found: {library}", source, "visa_library")
    try:
        return pyvisa.ResourceManager(rig.visa_library)
    except (OSError, ValueError, pyvisa.errors.Error) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot load VISA library {rig.visa_library!r}: {message}", source, "visa_library") from None


def open_instrument(rig: RigConfig, name: str, rm: pyvisa.ResourceManager, source: str = "instruments") -> InstrumentDriver:
    """Open instrument ``name``'s resource and build its driver. Nothing is written to it.

    Raises:
        ConfigError: the driver cannot be found.
        InstrumentError: the resource cannot be opened.
    """
    inst = rig.instruments[name]
    driver = resolve_driver_class(inst.driver, source, f"instruments.{name}.driver")
    options = dict(driver.resource_options)
    if inst.resource.upper().startswith("ASRL"):
        options.update(driver.serial_options)
    try:
        resource = rm.open_resource(inst.resource, timeout=inst.timeout_ms, **options)
    except (pyvisa.errors.Error, OSError, ValueError) as exc:
        description = " ".join((getattr(exc, "description", None) or str(exc) or type(exc).__name__).split())
        raise InstrumentError(f"cannot open resource {inst.resource!r}: {description}", name) from None
    return driver.from_config(resource, name, rig)

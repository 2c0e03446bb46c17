"""What an instrument driver provides, how a dotted ``module:Class`` name finds one, and how what
an instrument says about itself is compared with the file's limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel

from ffzero_lab.config.registry import (
    EMULATED_INSTRUMENT_GROUP,
    INSTRUMENT_GROUP,
    available_drivers,
    entry_point_names,
    load_named,
)
from ffzero_lab.config.registry import (
    import_object as import_object,  # re-exported: instrument drivers are named the same way
)
from ffzero_lab.core.errors import ConfigError

if TYPE_CHECKING:
    from ffzero_lab.rig.config import InstrumentConfig, RigConfig


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


class HeaterInstrument(InstrumentDriver, Protocol):
    """A driver of ``kind = "heater"``: per-channel voltages, every write checked against the
    channel limits and the power budget before a byte is sent (raising ``LimitError`` /
    ``PowerBudgetError`` with nothing written). Its ``from_config`` also takes ``budget=``, the
    rig's :class:`~.budget.PowerBudget` shared with the rig's other heater drivers."""

    @property
    def channels(self) -> int:
        """Channels in use, numbered ``0..channels-1``."""
        ...

    def set_voltages_V(self, channels: Any, voltages_V: Any) -> None:
        """Set channels to voltages, V."""
        ...

    def read_voltages_V(self, channels: Any = None) -> Any:
        """Measured output voltages (all channels by default), V."""
        ...

    def safe_state(self) -> None:
        """Every channel to its safe value."""
        ...


class PowerMeterInstrument(InstrumentDriver, Protocol):
    """A driver of ``kind = "power_meter"``: ports numbered from 1, readings in watts."""

    def configure(self) -> None:
        """Apply the settings (watts, wavelength, range, averaging)."""
        ...

    def fetch_power_W(self) -> Any:
        """The latest reading of every port, ``(ports,)``, W."""
        ...


class LoggingPowerMeter(PowerMeterInstrument, Protocol):
    """A power meter that logs one sample per external trigger, so that a hardware-timed sweep is
    read in one transfer per port: its trigger input on the sweep's sample clock, ``arm_log``
    before the sweep starts, ``fetch_log_W`` after it ends. A driver declares the capability with
    ``logs_on_trigger = True`` (readable on the class: ``getattr(cls, "logs_on_trigger", False)``).
    """

    logs_on_trigger: ClassVar[bool]
    #: Samples per port of one run.
    log_points_max: ClassVar[int]
    #: Averaging time of one sample, ``(shortest, longest)``, s.
    averaging_range_s: ClassVar[tuple[float, float]]

    def arm_log(self, points: int, averaging_s: float) -> None:
        """Arm a run of ``points`` samples per port, one per trigger edge, each averaged over
        ``averaging_s`` s. A request beyond the meter's limits raises ``LimitError`` (or
        ``ConfigError`` for a non-number) before anything is sent."""
        ...

    def fetch_log_W(self, timeout_s: float) -> Any:
        """Wait up to ``timeout_s`` s for the run to complete; its samples, ``(points, ports)`` W.
        An incomplete run raises ``InstrumentError`` naming the instrument and the samples logged."""
        ...

    def disarm(self) -> None:
        """Stop logging and ignore the trigger input (also part of the meter's ``close``)."""
        ...

    def logging_instrument_time_s(self, points: int, averaging_s: float) -> float:
        """The instrument time a run costs (sampling and the blocks' transfer), s."""
        ...


class ClockedOutput(Protocol):
    """A hardware-timed heater instrument (``timing: {mode: hardware, ...}``, e.g. an NI-DAQmx
    analog-output module): a whole table of voltages played on a sample clock, checked (channel
    limits, the power budget with every row and every step between rows) before a sample is
    written. It also has the :class:`HeaterInstrument` methods, for single writes and the safe state.
    """

    def check_table(self, channels: Any, table_V: Any) -> Any:
        """``(n, k)`` voltages for ``channels`` ``(k,)`` as they would be written (on the
        instrument's grid), V; raises ``LimitError`` / ``PowerBudgetError`` and writes nothing."""
        ...

    def load_table(self, channels: Any, table_V: Any, rate_Sps: float) -> None:
        """Check, then write the table, ``(n, k)`` V, to be put out at ``rate_Sps`` once started
        (by :meth:`start`, or by the start trigger of the instrument's ``timing``)."""
        ...

    def start(self) -> None:
        """Start (or arm, when it waits for a start trigger)."""
        ...

    def finish(self, timeout_s: float) -> None:
        """Wait until the table has been put out; the last row is then held."""
        ...

    def stop(self) -> None:
        """Stop (also after a failure; raises nothing)."""
        ...


class ClockedInput(Protocol):
    """A hardware-timed power meter (e.g. an NI-DAQmx analog-input module reading photodiode
    amplifiers): ``samples`` readings of every port on a sample clock, fetched as one block."""

    def arm(self, samples: int, rate_Sps: float) -> None:
        """Prepare an acquisition of ``samples`` per port at ``rate_Sps`` (its clock and start
        trigger as the instrument's ``timing`` says)."""
        ...

    def start(self) -> None:
        """Start (or arm, when it waits for a start trigger)."""
        ...

    def fetch_block_W(self, timeout_s: float) -> Any:
        """The whole acquisition, ``(samples, ports)`` W."""
        ...

    def stop(self) -> None:
        """Stop (also after a failure; raises nothing)."""
        ...


def resolve_driver_class(dotted: str, source: str = "instruments", field: str = "driver") -> type[InstrumentDriver]:
    """The driver class ``dotted`` names: an entry point of the group ``ffzero_lab.instruments``
    (an installed package's driver, e.g. ``qontrol``) or ``module:Class``; checked to be an
    instrument driver.

    Raises:
        ConfigError: naming ``source`` and ``field`` when it cannot be found or is no driver.
    """
    driver = load_named(dotted, INSTRUMENT_GROUP, source, field, "instrument driver")
    missing = [a for a in ("kind", "settings_model", "from_config", "identify") if not hasattr(driver, a)]
    if missing:
        raise ConfigError(f"{dotted!r} is not an instrument driver (no {', '.join(missing)})", source, field)
    return driver


def find_emulator(driver: str, source: str = "emulated rig", field: str = "driver") -> Any:
    """The emulator factory of instrument driver ``driver`` (an entry point name or ``module:Class``):
    the entry point of the group ``ffzero_lab.emulated_instruments`` named as the driver's entry
    point in ``ffzero_lab.instruments``.

    Raises:
        ConfigError: naming ``source`` and ``field`` when no installed emulator plays the driver.
    """
    if ":" in driver:
        cls = resolve_driver_class(driver, source, field)
        names = entry_point_names(INSTRUMENT_GROUP, driver)
        names += entry_point_names(INSTRUMENT_GROUP, f"{cls.__module__}:{cls.__qualname__}")
    else:
        names = [driver]
    installed = available_drivers(EMULATED_INSTRUMENT_GROUP)
    for name in names:
        if name in installed:
            return load_named(name, EMULATED_INSTRUMENT_GROUP, source, field, "emulator")
    raise ConfigError(f"no emulator plays driver {driver!r} (installed emulators: {', '.join(installed) or 'none'}; "
                      "or give 'emulator: module:function' for it in the emulated rig file)", source, field)


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
                problems.append(
                    f"channel {channel}: voltage_max_V {limits.voltage_max_V} > instrument full scale {high} V"
                )
            if limits.voltage_min_V < low:
                problems.append(f"channel {channel}: voltage_min_V {limits.voltage_min_V} < instrument lowest {low} V")
        if identity.current_max_mA is not None and limits.current_max_mA > identity.current_max_mA:
            problems.append(
                f"channel {channel}: current_max_mA {limits.current_max_mA} > instrument full scale "
                f"{identity.current_max_mA} mA"
            )
    return problems

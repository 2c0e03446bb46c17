"""The rig: ``instruments.yaml`` as validated models, the driver protocols (every capability the
rig uses), opening instruments, the power budget and the power-safe write order
(:mod:`.budget`, the one place), the rig's IO with retries and its safe state, each mesh as a
:class:`~ffzero_lab.core.contract.PhysicalLayer`, the preflight of every reachable set-point and
building the rig's network. This ``__init__`` is the public face drivers import; the package
never imports a driver (drivers are named in ``instruments.yaml`` as ``module:Class``).
Imports :mod:`ffzero_lab.photonics`, :mod:`ffzero_lab.config`, :mod:`ffzero_lab.core`.

``instruments.yaml``: the rig's instruments, channel maps and safety limits.

The file says which instruments the lab has (a VISA resource and a driver class each), which
heater channel drives which phase of which mesh, which power-meter port reads which output
mode, and the limits nothing may cross: per-channel voltage and current, a total electrical
power budget, and the safe value each channel returns to. It is validated once, at the edge,
by pydantic (unknown keys are rejected everywhere); errors name the file and the field.

Drivers live in ``drivers/instruments/`` and are named by dotted path ``module:Class`` (as in
QCoDeS station files); this package never imports a driver by name. A driver class provides
the :class:`InstrumentDriver` protocol.

Units are in the names: ``_V`` volts, ``_mA`` milliamperes, ``_W`` watts, ``_ohm`` ohms,
``_s`` seconds, ``_ms`` milliseconds. Heater channels are numbered from 0, as the Qontrol
numbers them; power-meter ports from 1, as the Keysight N774x numbers them.

| module | job |
| --- | --- |
| :mod:`.config` | the pydantic models and the cross-field checks |
| :mod:`.loader` | file -> validated :class:`RigConfig`, drivers resolved |
| :mod:`.driver` | the driver protocol, ``module:Class`` resolution, limits vs. the instrument |
| :mod:`.connect` | the VISA backend and opening a driver on its resource |
| :mod:`.budget` | :class:`PowerBudget` shared by the heater drivers; the power-safe write order |
| :mod:`.errors` | :class:`InstrumentError`, :class:`LimitError`, :class:`PowerBudgetError` |
| :mod:`.calibration_file` | the calibration file (a law ``phi0, k`` per heater channel) |
| :mod:`.spec` | a mesh's channels, laws and ports from the two files (no I/O) |
| :mod:`.io` | the open instruments: checked writes, readings, retries, the safe state |
| :mod:`.plan` | the order of a call's S x B evaluations (one settle per setting); a hardware-timed sweep |
| :mod:`.layer` | :class:`HardwareMesh`, a mesh as a PhysicalLayer |
| :mod:`.build` | instruments file -> :class:`HardwareNetwork` |
| :mod:`.preflight` | every reachable set-point against the limits and the power budget |
"""

from ffzero_lab.photonics.heaters import PhaseLaws
from ffzero_lab.rig.budget import PowerBudget, power_falls, power_ordered_steps, rising_power_W
from ffzero_lab.rig.build import HardwareNetwork, build_rig_network, load_specs
from ffzero_lab.rig.calibration_file import (
    CalibrationFile,
    ChannelLaw,
    load_calibration,
    save_calibration,
)
from ffzero_lab.rig.config import (
    ChannelLimits,
    ChannelLimitsOverride,
    ChannelRef,
    HardwareTiming,
    HeaterChannels,
    InstrumentConfig,
    LayerMap,
    PortRef,
    RigConfig,
)
from ffzero_lab.rig.connect import open_instrument, resource_manager
from ffzero_lab.rig.driver import (
    ClockedInput,
    ClockedOutput,
    HeaterInstrument,
    InstrumentDriver,
    InstrumentIdentity,
    PowerMeterInstrument,
    find_emulator,
    import_object,
    limit_problems,
    resolve_driver_class,
)
from ffzero_lab.rig.errors import InstrumentError, LimitError, PowerBudgetError
from ffzero_lab.rig.io import RigCounters, RigIO
from ffzero_lab.rig.layer import HardwareMesh, InputRangeError
from ffzero_lab.rig.loader import (
    check_driver,
    load_rig,
    parse_rig,
    rig_schema,
)
from ffzero_lab.rig.plan import SweepGeometry
from ffzero_lab.rig.preflight import Setpoints, check_setpoints
from ffzero_lab.rig.spec import LayerSpec, group_by_instrument

__all__ = [
    "CalibrationFile",
    "ChannelLaw",
    "ChannelLimits",
    "ChannelLimitsOverride",
    "ChannelRef",
    "ClockedInput",
    "ClockedOutput",
    "HardwareTiming",
    "HardwareMesh",
    "HardwareNetwork",
    "HeaterChannels",
    "HeaterInstrument",
    "InputRangeError",
    "InstrumentConfig",
    "InstrumentDriver",
    "InstrumentError",
    "InstrumentIdentity",
    "LayerMap",
    "LayerSpec",
    "LimitError",
    "PhaseLaws",
    "PortRef",
    "PowerBudget",
    "PowerBudgetError",
    "PowerMeterInstrument",
    "RigConfig",
    "RigCounters",
    "RigIO",
    "Setpoints",
    "SweepGeometry",
    "build_rig_network",
    "check_driver",
    "power_falls",
    "power_ordered_steps",
    "rising_power_W",
    "group_by_instrument",
    "check_setpoints",
    "find_emulator",
    "import_object",
    "limit_problems",
    "load_calibration",
    "load_rig",
    "load_specs",
    "open_instrument",
    "parse_rig",
    "resolve_driver_class",
    "resource_manager",
    "rig_schema",
    "save_calibration",
]

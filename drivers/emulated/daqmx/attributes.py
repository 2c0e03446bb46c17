"""The DAQmx properties the emulator answers: ``(group, attribute id) -> getter`` in ``_ATTRS``.

Groups are ``"task"``, ``"chan"``, ``"read"``, ``"write"``, ``"timing"`` and ``"trig"``; ids are the
ones ``nidaqmx``'s task properties pass (e.g. 0x1344, DAQmx_SampClk_Rate, in samples/s after the
timebase division). A getter takes ``(emulator, task)``, or ``(emulator, task, channel)`` for the
``"chan"`` group; rates are in samples/s, limits in volts, counts in samples per channel. Asking for
a property this table lacks, or one that does not apply to the task's kind, gives
ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from nidaqmx.constants import ChannelType, UsageTypeAI, UsageTypeAO
from nidaqmx.error_codes import DAQmxErrors
from nidaqmx.utils import flatten_channel_string

from .errors import DaqmxFault, _fault
from .tasks import _FINITE, _Task

if TYPE_CHECKING:
    from .emulator import DaqmxEmulator


def _unsupported(task: _Task, attr: int) -> DaqmxFault:
    return _fault(DAQmxErrors.ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT, task.name, f"Property: 0x{attr:X}")


def _require_kind(kind: str, prop: str, attr: int):  # type: ignore[no-untyped-def]
    def deco(fn):  # type: ignore[no-untyped-def]
        def inner(emu: DaqmxEmulator, task: _Task, *rest: Any) -> Any:
            if task.kind != kind:
                raise _fault(
                    DAQmxErrors.ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT,
                    task.name,
                    f"Property: {prop} (0x{attr:X})",
                )
            return fn(emu, task, *rest)

        return inner

    return deco


def _sample_clock_rate(emu: DaqmxEmulator, task: _Task) -> float:
    return emu._actual_rate(task)


def _read_default_samples(emu: DaqmxEmulator, task: _Task) -> int:
    if not task.hw_timed:
        return 1
    if task.sample_mode == _FINITE:
        return max(0, task.samps_per_chan - task.read_pos)
    return max(0, task.ticks - task.read_pos)


# (group, DAQmx attribute id) -> getter. Ids are the ones nidaqmx's task properties pass.
_ATTRS: dict[tuple[str, int], Callable[..., Any]] = {
    # Task
    ("task", 0x1276): lambda e, t: t.name,  # DAQmx_Task_Name
    ("task", 0x1273): lambda e, t: flatten_channel_string([c.name for c in t.channels]),  # Task_Channels
    ("task", 0x2181): lambda e, t: t.n_chans,  # DAQmx_Task_NumChans
    ("task", 0x230E): lambda e, t: t.device or "",  # DAQmx_Task_Devices
    ("task", 0x29BA): lambda e, t: 1 if t.channels else 0,  # DAQmx_Task_NumDevices
    # Channel
    ("chan", 0x187F): lambda e, t, c: (
        ChannelType.ANALOG_OUTPUT.value if c.kind == "ao" else ChannelType.ANALOG_INPUT.value
    ),  # DAQmx_ChanType
    ("chan", 0x18F5): lambda e, t, c: c.physical,  # DAQmx_PhysicalChanName
    ("chan", 0x1931): lambda e, t, c: (  # DAQmx_AO_DevScalingCoeff: raw code = c0 + c1 V
        tuple(e.devices[c.device].scaling_coeff) if c.kind == "ao" else _raise(_unsupported(t, 0x1931))
    ),
    ("chan", 0x0695): lambda e, t, c: (
        UsageTypeAI.VOLTAGE.value if c.kind == "ai" else _raise(_unsupported(t, 0x695))
    ),
    ("chan", 0x1108): lambda e, t, c: (
        UsageTypeAO.VOLTAGE.value if c.kind == "ao" else _raise(_unsupported(t, 0x1108))
    ),
    ("chan", 0x1097): lambda e, t, c: (
        c.terminal_config if c.kind == "ai" else _raise(_unsupported(t, 0x1097))
    ),
    ("chan", 0x17DD): lambda e, t, c: c.max_val if c.kind == "ai" else _raise(_unsupported(t, 0x17DD)),
    ("chan", 0x17DE): lambda e, t, c: c.min_val if c.kind == "ai" else _raise(_unsupported(t, 0x17DE)),
    ("chan", 0x1186): lambda e, t, c: c.max_val if c.kind == "ao" else _raise(_unsupported(t, 0x1186)),
    ("chan", 0x1187): lambda e, t, c: c.min_val if c.kind == "ao" else _raise(_unsupported(t, 0x1187)),
    # Read (AI tasks)
    ("read", 0x1823): _require_kind("ai", "DAQmx_Read_ChannelsToRead", 0x1823)(
        lambda e, t: t.channels_to_read or flatten_channel_string([c.name for c in t.channels])
    ),
    ("read", 0x1223): _require_kind("ai", "DAQmx_Read_AvailSampPerChan", 0x1223)(
        lambda e, t: max(0, t.ticks - t.read_pos)
    ),
    ("read", 0x217B): _require_kind("ai", "DAQmx_Read_NumChans", 0x217B)(lambda e, t: t.n_chans),
    ("read", 0x31E8): _require_kind("ai", "DAQmx_DefaultNumberOfSamplesToRead", 0x31E8)(
        _read_default_samples
    ),
    ("read", 0x192A): _require_kind("ai", "DAQmx_Read_TotalSampPerChanAcquired", 0x192A)(
        lambda e, t: t.ticks
    ),
    ("read", 0x1221): _require_kind("ai", "DAQmx_Read_CurrReadPos", 0x1221)(lambda e, t: t.read_pos),
    ("read", 0x1215): _require_kind("ai", "DAQmx_Read_ReadAllAvailSamp", 0x1215)(lambda e, t: False),
    # Write (AO tasks)
    ("write", 0x1453): _require_kind("ao", "DAQmx_Write_RegenMode", 0x1453)(lambda e, t: t.regen_mode),
    ("write", 0x217E): _require_kind("ao", "DAQmx_Write_NumChans", 0x217E)(lambda e, t: t.n_chans),
    ("write", 0x1460): _require_kind("ao", "DAQmx_Write_SpaceAvail", 0x1460)(
        lambda e, t: (
            e.devices[t.device].buffer_samps_per_chan
            - (0 if t.buffer is None or t.replace_on_write else t.buffer.shape[1])
        )
    ),
    ("write", 0x192B): _require_kind("ao", "DAQmx_Write_TotalSampPerChanGenerated", 0x192B)(
        lambda e, t: t.ticks if t.begun else 0
    ),
    ("write", 0x1458): _require_kind("ao", "DAQmx_Write_CurrWritePos", 0x1458)(
        lambda e, t: 0 if t.buffer is None or t.replace_on_write else t.buffer.shape[1]
    ),
    # Timing
    ("timing", 0x1344): _sample_clock_rate,  # DAQmx_SampClk_Rate (actual, after coercion)
    ("timing", 0x22C8): lambda e, t: e.devices[t.device].max_rate_sps if t.device else 0.0,  # SampClk_MaxRate
    ("timing", 0x1300): lambda e, t: t.sample_mode,  # DAQmx_SampQuant_SampMode
    ("timing", 0x1310): lambda e, t: t.samps_per_chan,  # DAQmx_SampQuant_SampPerChan
    ("timing", 0x1347): lambda e, t: t.timing_type,  # DAQmx_SampTimingType
    ("timing", 0x1301): lambda e, t: t.active_edge,  # DAQmx_SampClk_ActiveEdge
    ("timing", 0x1852): lambda e, t: t.clock_source or "OnboardClock",  # DAQmx_SampClk_Src
    ("timing", 0x2F1B): lambda e, t: t.terminal("SampleClock") if t.device else "",  # DAQmx_SampClk_Term
    # Start trigger
    ("trig", 0x1393): lambda e, t: t.trigger_type,  # DAQmx_StartTrig_Type
    ("trig", 0x1407): lambda e, t: t.trigger_source,  # DAQmx_DigEdge_StartTrig_Src
    ("trig", 0x1404): lambda e, t: t.trigger_edge,  # DAQmx_DigEdge_StartTrig_Edge
    ("trig", 0x2F1E): lambda e, t: t.terminal("StartTrigger") if t.device else "",  # DAQmx_StartTrig_Term
}


def _raise(exc: Exception) -> NoReturn:
    raise exc

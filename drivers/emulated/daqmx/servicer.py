"""The gRPC servicer: the NI-DAQmx RPCs the ``nidaqmx`` library issues, mapped onto the emulator.

:class:`EmulatedDaqmxServicer` subclasses the generated ``NiDAQmxServicer`` that ships inside
``nidaqmx._stubs`` and implements only the RPCs the library issues for finite, sample-clocked AO/AI
tasks (:data:`IMPLEMENTED_RPCS`); every other RPC answers UNIMPLEMENTED, as an older real server
would. Refusals go out the way NI's server sends them: gRPC status UNKNOWN, details = the extended
error text, trailing metadata ``ni-error`` and, on reads and writes, ``ni-samps-per-chan-read`` /
``ni-samps-per-chan-written``; SAMPLES_NOT_YET_AVAILABLE goes in the read response's ``status``
field. Write and read arrays are flat float64 volts, ``n_channels * samples_per_channel`` long,
grouped by channel or interleaved as the request's data layout / fill mode says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
from nidaqmx._stubs import nidaqmx_pb2 as pb
from nidaqmx._stubs import nidaqmx_pb2_grpc as pb_grpc
from nidaqmx.error_codes import DAQmxErrors

from .attributes import _unsupported
from .emulator import DaqmxEmulator
from .errors import _TEXT, DaqmxFault, _fault, _NonDriver

#: Reported by GetSystemInfoAttributeUInt32 as the NI-DAQmx driver version (major, minor, update).
#: 24.5 or later makes ``task.read(READ_ALL_AVAILABLE)`` ask DAQmx_DefaultNumberOfSamplesToRead.
DRIVER_VERSION: tuple[int, int, int] = (25, 3, 0)

#: The RPCs this servicer implements (everything else answers UNIMPLEMENTED).
IMPLEMENTED_RPCS: tuple[str, ...] = (
    "GetSystemInfoAttributeUInt32",
    "GetErrorString",
    "CreateTask",
    "ClearTask",
    "CreateAOVoltageChan",
    "CreateAIVoltageChan",
    "CfgSampClkTiming",
    "CfgDigEdgeStartTrig",
    "WriteAnalogF64",
    "WriteRaw",
    "StartTask",
    "WaitUntilTaskDone",
    "IsTaskDone",
    "ReadAnalogF64",
    "StopTask",
    "TaskControl",
    "GetTaskAttributeString",
    "GetTaskAttributeUInt32",
    "GetChanAttributeInt32",
    "GetChanAttributeString",
    "GetChanAttributeDouble",
    "GetChanAttributeDoubleArray",
    "GetReadAttributeString",
    "GetReadAttributeUInt32",
    "GetReadAttributeUInt64",
    "GetReadAttributeBool",
    "GetWriteAttributeInt32",
    "SetWriteAttributeInt32",
    "GetWriteAttributeUInt32",
    "GetWriteAttributeUInt64",
    "GetTimingAttributeDouble",
    "GetTimingAttributeInt32",
    "GetTimingAttributeUInt64",
    "GetTimingAttributeString",
    "GetTrigAttributeInt32",
    "GetTrigAttributeString",
)


def _oneof(request: Any, oneof: str, enum_field: str, raw_field: str) -> int:
    which = request.WhichOneof(oneof)
    return int(getattr(request, enum_field if which == enum_field else raw_field))


def _rpc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Translate DaqmxFault/_NonDriver into the gRPC status NI's server sends."""

    def wrapper(self: EmulatedDaqmxServicer, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except DaqmxFault as fault:
            md = [("ni-error", str(fault.code))]
            if fault.samps_per_chan_read is not None:
                md.append(("ni-samps-per-chan-read", str(fault.samps_per_chan_read)))
            if fault.samps_per_chan_written is not None:
                md.append(("ni-samps-per-chan-written", str(fault.samps_per_chan_written)))
            context.set_trailing_metadata(tuple(md))
            context.abort(grpc.StatusCode.UNKNOWN, fault.message)
        except _NonDriver as exc:
            context.abort(exc.code, exc.message)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class EmulatedDaqmxServicer(pb_grpc.NiDAQmxServicer):
    """``nidaqmx_grpc.NiDAQmx`` servicer backed by a :class:`DaqmxEmulator`."""

    def __init__(self, emulator: DaqmxEmulator) -> None:
        self.emu = emulator

    # system / errors
    @_rpc
    def GetSystemInfoAttributeUInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        attr = _oneof(request, "attribute_enum", "attribute", "attribute_raw")
        versions = {0x1272: DRIVER_VERSION[0], 0x1923: DRIVER_VERSION[1], 0x2F22: DRIVER_VERSION[2]}
        if attr not in versions:
            raise _fault(DAQmxErrors.ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT, None, f"Property: 0x{attr:X}")
        return pb.GetSystemInfoAttributeUInt32Response(value=versions[attr])

    def GetErrorString(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            text = _TEXT.get(DAQmxErrors(request.error_code), "")
        except ValueError:
            text = ""
        return pb.GetErrorStringResponse(error_string=text)

    # tasks and channels
    @_rpc
    def CreateTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, new = self.emu.create_task(request.session_name, int(request.initialization_behavior))
        return pb.CreateTaskResponse(task=_session(name), new_session_initialized=new)

    @_rpc
    def ClearTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.clear_task(request.task.name)
        return pb.ClearTaskResponse()

    @_rpc
    def CreateAOVoltageChan(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.add_channels(
            request.task.name,
            "ao",
            request.physical_channel,
            request.name_to_assign_to_channel,
            request.min_val,
            request.max_val,
        )
        return pb.CreateAOVoltageChanResponse()

    @_rpc
    def CreateAIVoltageChan(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.add_channels(
            request.task.name,
            "ai",
            request.physical_channel,
            request.name_to_assign_to_channel,
            request.min_val,
            request.max_val,
            _oneof(request, "terminal_config_enum", "terminal_config", "terminal_config_raw"),
        )
        return pb.CreateAIVoltageChanResponse()

    @_rpc
    def CfgSampClkTiming(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.cfg_samp_clk_timing(
            request.task.name,
            request.rate,
            request.source,
            _oneof(request, "active_edge_enum", "active_edge", "active_edge_raw"),
            _oneof(request, "sample_mode_enum", "sample_mode", "sample_mode_raw"),
            int(request.samps_per_chan),
        )
        return pb.CfgSampClkTimingResponse()

    @_rpc
    def CfgDigEdgeStartTrig(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.cfg_dig_edge_start_trig(
            request.task.name,
            request.trigger_source,
            _oneof(request, "trigger_edge_enum", "trigger_edge", "trigger_edge_raw"),
        )
        return pb.CfgDigEdgeStartTrigResponse()

    # run
    @_rpc
    def WriteAnalogF64(self, request: Any, context: grpc.ServicerContext) -> Any:
        flat = np.asarray(request.write_array, dtype=np.float64)
        try:
            written = self.emu.write(
                request.task.name,
                int(request.num_samps_per_chan),
                bool(request.auto_start),
                _oneof(request, "data_layout_enum", "data_layout", "data_layout_raw"),
                flat,
            )
        except DaqmxFault as fault:  # NI's server always reports how much was written
            if fault.samps_per_chan_written is None:
                fault.samps_per_chan_written = 0
            raise
        return pb.WriteAnalogF64Response(samps_per_chan_written=written)

    @_rpc
    def WriteRaw(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            written = self.emu.write_raw(request.task.name, int(request.num_samps), bool(request.auto_start),
                                         bytes(request.write_array))
        except DaqmxFault as fault:
            if fault.samps_per_chan_written is None:
                fault.samps_per_chan_written = 0
            raise
        return pb.WriteRawResponse(samps_per_chan_written=written)

    @_rpc
    def StartTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.start(request.task.name)
        return pb.StartTaskResponse()

    @_rpc
    def StopTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.stop(request.task.name)
        return pb.StopTaskResponse()

    @_rpc
    def TaskControl(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.control(request.task.name, _oneof(request, "action_enum", "action", "action_raw"))
        return pb.TaskControlResponse()

    @_rpc
    def WaitUntilTaskDone(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.emu.wait_until_done(request.task.name, float(request.time_to_wait))
        return pb.WaitUntilTaskDoneResponse()

    @_rpc
    def IsTaskDone(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.IsTaskDoneResponse(is_task_done=self.emu.is_task_done(request.task.name))

    @_rpc
    def ReadAnalogF64(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            flat, got, status = self.emu.read(
                request.task.name,
                int(request.num_samps_per_chan),
                float(request.timeout),
                _oneof(request, "fill_mode_enum", "fill_mode", "fill_mode_raw"),
                int(request.array_size_in_samps),
            )
        except DaqmxFault as fault:  # NI's server always reports how much was read
            if fault.samps_per_chan_read is None:
                fault.samps_per_chan_read = 0
            raise
        context.set_trailing_metadata((("ni-samps-per-chan-read", str(got)),))
        return pb.ReadAnalogF64Response(status=status, read_array=flat, samps_per_chan_read=got)

    # attributes
    def _get(self, group: str, request: Any, channel: str = "") -> Any:
        return self.emu.attribute(
            group, request.task.name, _oneof(request, "attribute_enum", "attribute", "attribute_raw"), channel
        )

    @_rpc
    def GetTaskAttributeString(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTaskAttributeStringResponse(value=str(self._get("task", request)))

    @_rpc
    def GetTaskAttributeUInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTaskAttributeUInt32Response(value=int(self._get("task", request)))

    @_rpc
    def GetChanAttributeInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetChanAttributeInt32Response(value_raw=int(self._get("chan", request, request.channel)))

    @_rpc
    def GetChanAttributeString(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetChanAttributeStringResponse(value=str(self._get("chan", request, request.channel)))

    @_rpc
    def GetChanAttributeDouble(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetChanAttributeDoubleResponse(value=float(self._get("chan", request, request.channel)))

    @_rpc
    def GetChanAttributeDoubleArray(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetChanAttributeDoubleArrayResponse(value=list(self._get("chan", request, request.channel)))

    @_rpc
    def GetReadAttributeString(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetReadAttributeStringResponse(value=str(self._get("read", request)))

    @_rpc
    def GetReadAttributeUInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetReadAttributeUInt32Response(value=int(self._get("read", request)))

    @_rpc
    def GetReadAttributeUInt64(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetReadAttributeUInt64Response(value=int(self._get("read", request)))

    @_rpc
    def GetReadAttributeBool(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetReadAttributeBoolResponse(value=bool(self._get("read", request)))

    @_rpc
    def GetWriteAttributeInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetWriteAttributeInt32Response(value_raw=int(self._get("write", request)))

    @_rpc
    def SetWriteAttributeInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        attr = _oneof(request, "attribute_enum", "attribute", "attribute_raw")
        value = _oneof(request, "value_enum", "value", "value_raw")
        if attr != 0x1453:  # DAQmx_Write_RegenMode is the only settable write property here
            with self.emu._cond:
                raise _unsupported(self.emu._task(request.task.name), attr)
        self.emu.set_regen_mode(request.task.name, value)
        return pb.SetWriteAttributeInt32Response()

    @_rpc
    def GetWriteAttributeUInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetWriteAttributeUInt32Response(value=int(self._get("write", request)))

    @_rpc
    def GetWriteAttributeUInt64(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetWriteAttributeUInt64Response(value=int(self._get("write", request)))

    @_rpc
    def GetTimingAttributeDouble(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTimingAttributeDoubleResponse(value=float(self._get("timing", request)))

    @_rpc
    def GetTimingAttributeInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTimingAttributeInt32Response(value_raw=int(self._get("timing", request)))

    @_rpc
    def GetTimingAttributeUInt64(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTimingAttributeUInt64Response(value=int(self._get("timing", request)))

    @_rpc
    def GetTimingAttributeString(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTimingAttributeStringResponse(value=str(self._get("timing", request)))

    @_rpc
    def GetTrigAttributeInt32(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTrigAttributeInt32Response(value_raw=int(self._get("trig", request)))

    @_rpc
    def GetTrigAttributeString(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.GetTrigAttributeStringResponse(value=str(self._get("trig", request)))


def _session(name: str) -> dict[str, str]:
    """The ``nidevice_grpc.Session`` field of CreateTaskResponse, as protobuf accepts it."""
    return {"name": name}

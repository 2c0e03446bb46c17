"""An emulated NI-DAQmx gRPC device server for hardware-timed AO/AI benches, on virtual clocks: the
unmodified ``nidaqmx`` library talks to it as to NI's gRPC Device Server (``grpc_options=
nidaqmx.GrpcSessionOptions(channel, name)``). It holds the device specs and the test model
(:mod:`.devices`), the DAQmx faults and their status codes (:mod:`.errors`), the task state
(:mod:`.tasks`), the emulator of finite, sample-clocked tasks with their channels, timing, triggers
and buffers on one virtual clock per device (:mod:`.emulator`, property read-backs in
:mod:`.attributes`), the gRPC servicer that maps the RPCs onto it (:mod:`.servicer`) and the server,
:func:`serve_daqmx` and the command line ``python -m drivers.emulated.daqmx --port 0``
(:mod:`.server`). The server binds 127.0.0.1 only.
"""

from .devices import DeviceModel, DeviceSpec, SumOfSquaresModel, default_devices
from .emulator import DaqmxEmulator
from .errors import DaqmxFault
from .server import DaqmxServer, serve_daqmx
from .servicer import IMPLEMENTED_RPCS, EmulatedDaqmxServicer

__all__ = [
    "DeviceModel",
    "DeviceSpec",
    "DaqmxEmulator",
    "DaqmxFault",
    "DaqmxServer",
    "EmulatedDaqmxServicer",
    "IMPLEMENTED_RPCS",
    "SumOfSquaresModel",
    "default_devices",
    "serve_daqmx",
]

"""Emulated NI-DAQmx gRPC device server for hardware-timed benches, with a virtual clock.

:class:`DaqmxServer` serves an :class:`~drivers.emulated.daqmx.servicer.EmulatedDaqmxServicer` on
``127.0.0.1`` only (an OS-chosen port by default) and counts every RPC it receives; :func:`serve_daqmx`
runs one for a ``with`` block; :func:`main` is the command line::

    python -m drivers.emulated.daqmx --port 0 [--devices JSON] [--model module:attr]

which prints the port on stdout and serves until SIGTERM or SIGINT (then exits 0).
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc
from nidaqmx._stubs import nidaqmx_pb2_grpc as pb_grpc

from .devices import DeviceModel, DeviceSpec
from .emulator import DaqmxEmulator
from .servicer import IMPLEMENTED_RPCS, EmulatedDaqmxServicer


class _CallRecorder(grpc.ServerInterceptor):
    """Counts every RPC by method name, including the ones that answer UNIMPLEMENTED."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        name = handler_call_details.method.rsplit("/", 1)[-1]
        with self._lock:
            self.calls[name] += 1
        return continuation(handler_call_details)


class DaqmxServer:
    """The emulated device server on ``127.0.0.1``; start() binds an OS-chosen port by default.

    Args:
        devices, respond, max_wall_wait_s: see :class:`DaqmxEmulator`.
        port: TCP port on 127.0.0.1; 0 lets the OS choose (read :attr:`port` after start()).
        max_workers: gRPC worker threads (each blocking wait holds one).
        max_message_bytes: Largest gRPC message the server sends/receives, bytes; -1 = unlimited,
            which is what NI's gRPC Device Server uses when its ``max_message_size`` is unset.
            (The *client* channel still caps received messages at 4 MiB unless it is created
            with ``options=[("grpc.max_receive_message_length", -1)]``.)
    """

    def __init__(
        self,
        devices: Mapping[str, DeviceSpec | Mapping[str, Any]] | None = None,
        respond: DeviceModel | None = None,
        *,
        port: int = 0,
        max_workers: int = 16,
        max_wall_wait_s: float | None = 60.0,
        max_message_bytes: int = -1,
    ) -> None:
        self.emulator = DaqmxEmulator(devices, respond, max_wall_wait_s=max_wall_wait_s)
        self._max_message_bytes = max_message_bytes
        self._requested_port = port
        self._max_workers = max_workers
        self._recorder = _CallRecorder()
        self._executor: ThreadPoolExecutor | None = None
        self._server: grpc.Server | None = None
        self.port: int = 0

    @property
    def address(self) -> str:
        """``"127.0.0.1:<port>"``, for ``grpc.insecure_channel``."""
        return f"127.0.0.1:{self.port}"

    @property
    def bench_time_s(self) -> float:
        """Instrument time consumed so far on the virtual clocks, seconds."""
        return self.emulator.bench_time_s

    @property
    def rpc_calls(self) -> Counter[str]:
        """RPC name -> number of calls received (implemented or not)."""
        with self._recorder._lock:
            return Counter(self._recorder.calls)

    @property
    def unimplemented_calls(self) -> Counter[str]:
        """Calls received for RPCs this servicer does not implement."""
        return Counter({k: v for k, v in self.rpc_calls.items() if k not in IMPLEMENTED_RPCS})

    def start(self) -> int:
        """Bind 127.0.0.1:<port>, start serving on worker threads, return the port."""
        if self._server is not None:
            return self.port
        self.emulator.reopen()
        self._executor = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="daqmx-emu")
        server = grpc.server(
            self._executor,
            interceptors=[self._recorder],
            options=[
                ("grpc.max_receive_message_length", self._max_message_bytes),
                ("grpc.max_send_message_length", self._max_message_bytes),
            ],
        )
        pb_grpc.add_NiDAQmxServicer_to_server(EmulatedDaqmxServicer(self.emulator), server)
        port = server.add_insecure_port(f"127.0.0.1:{self._requested_port}")
        if port == 0:
            raise RuntimeError(f"could not bind 127.0.0.1:{self._requested_port}")
        server.start()
        self._server, self.port = server, port
        return port

    def stop(self, grace_s: float = 1.0) -> None:
        """Wake blocked waits, stop the gRPC server and join its worker threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self.emulator.close()
        server.stop(grace_s).wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> DaqmxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve_daqmx(
    devices: Mapping[str, DeviceSpec | Mapping[str, Any]] | None = None,
    respond: DeviceModel | None = None,
    **kwargs: Any,
) -> Iterator[DaqmxServer]:
    """Run a :class:`DaqmxServer` on 127.0.0.1 (OS-chosen port) for the ``with`` block."""
    server = DaqmxServer(devices, respond, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _load_model(spec: str) -> DeviceModel:
    module, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module), attr or "respond")
    return obj() if isinstance(obj, type) else obj


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m drivers.emulated.daqmx --port 0``: print the port, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = OS chooses)")
    parser.add_argument(
        "--devices",
        default=None,
        help='JSON object, e.g. \'{"Dev1": {"kind": "ao", "channels": 64, "max_rate": 1e6}}\'',
    )
    parser.add_argument(
        "--model",
        default=None,
        help="device model as module:attribute (a callable, or a class to instantiate)",
    )
    parser.add_argument("--max-wall-wait", type=float, default=60.0, help="cap on blocking waits, seconds")
    args = parser.parse_args(argv)
    devices = json.loads(args.devices) if args.devices else None
    respond = _load_model(args.model) if args.model else None
    server = DaqmxServer(devices, respond, port=args.port, max_wall_wait_s=args.max_wall_wait)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    port = server.start()
    print(port, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


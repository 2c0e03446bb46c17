"""A line-oriented TCP server on 127.0.0.1 for one emulated instrument, with latency and faults.

Each connection is served by its own thread: a command line comes in (``\\n``-terminated), the
instrument's handler answers zero or more complete reply messages, and the server sends them
after the configured latency - unless a fault rule matching the command says otherwise.
"""

from __future__ import annotations

import fnmatch
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ffzero_lab.core.waits import wait_s

#: An emulated instrument: one command line in, complete reply messages out (none for a write).
Handler = Callable[[str], list[bytes]]


@dataclass
class Fault:
    """What to do instead of the normal reply to commands matching ``match`` (a glob).

    Attributes:
        match: glob on the command line, e.g. ``"V3=*"`` or ``"*IDN?"``.
        reply: send this line instead of the instrument's reply (e.g. ``"E15:03"``).
        silent: send nothing (the client times out); the command is not executed.
        drop: close the connection instead of answering (the client's link breaks); the command
            is not executed. The server keeps listening, so the client can reconnect.
        delay_s: extra latency before the reply, s.
        count: how many commands it hits; None: every one.
        after: matching commands answered normally before the rule starts to hit.
    """

    match: str
    reply: str | None = None
    silent: bool = False
    drop: bool = False
    delay_s: float = 0.0
    count: int | None = None
    after: int = 0

    def hits(self, command: str) -> bool:
        """Whether the rule applies to ``command`` (and uses one of its ``count``)."""
        if self.count == 0 or not fnmatch.fnmatchcase(command, self.match):
            return False
        if self.after > 0:
            self.after -= 1
            return False
        if self.count is not None:
            self.count -= 1
        return True


class LineServer:
    """Serve ``handler`` on a TCP port of 127.0.0.1.

    Args:
        name: the instrument's name (thread names).
        handler: the emulated instrument.
        port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
        latency_s: delay before every reply, s.
        faults: rules applied in order; the first that hits wins.
    """

    host = "127.0.0.1"

    def __init__(self, name: str, handler: Handler, port: int = 0, latency_s: float = 0.0,
                 faults: list[Fault] | None = None) -> None:
        self.name, self.handler, self.port, self.latency_s = name, handler, port, latency_s
        self.faults: list[Fault] = list(faults or [])
        self.lock = threading.Lock()  # one command at a time across connections
        self.commands = 0  # command lines received
        self.busy_s = 0.0  # time spent in reply latency (measured), s
        self.delay_s = 0.0  # reply latency asked for (latency_s and faults' delay_s, summed), s
        self.handler_s = 0.0  # time the emulated instrument took to answer, s
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self._stopping = threading.Event()

    @property
    def resource(self) -> str:
        """The VISA resource string a client opens (pyvisa-py raw socket)."""
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    def start(self) -> None:
        """Bind and start accepting connections."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen()
        listener.settimeout(0.1)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._spawn(self._accept, f"{self.name}-accept")

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads."""
        self._stopping.set()
        for client in list(self._clients):
            _close(client)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def inject(self, fault: Fault) -> None:
        """Add a fault rule (it applies before the ones already there)."""
        with self.lock:
            self.faults.insert(0, fault)

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each reply leaves at once
            self._clients.append(client)
            self._spawn(self._serve, f"{self.name}-client", client)

    def _serve(self, client: socket.socket) -> None:
        buffer = b""
        with client:
            while not self._stopping.is_set():
                try:
                    chunk = client.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    replies = self._answer(line.decode("ascii", "replace").strip())
                    if replies is None:  # a dropped connection
                        _close(client)
                        return
                    try:
                        client.sendall(b"".join(replies))
                    except OSError:
                        return

    def _answer(self, command: str) -> list[bytes] | None:
        """The replies to ``command``; None to drop the connection."""
        with self.lock:
            self.commands += 1
            fault = next((f for f in self.faults if f.hits(command)), None)
            if fault is not None and fault.drop:
                return None
            if fault is not None and (fault.silent or fault.reply is not None):
                replies = [] if fault.silent else [fault.reply.encode("ascii") + b"\n"]  # type: ignore[union-attr]
            else:
                started = time.perf_counter()
                replies = self.handler(command)
                self.handler_s += time.perf_counter() - started
        delay = self.latency_s + (fault.delay_s if fault is not None else 0.0)
        if replies and delay > 0:
            started = time.perf_counter()
            wait_s(delay)
            with self.lock:
                self.busy_s += time.perf_counter() - started
                self.delay_s += delay
        return replies


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()

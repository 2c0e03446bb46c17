"""Named I/O on a pyvisa message-based resource: every failure says which instrument and command.

A driver never prints. A reply that does not come within the resource's timeout, or an error
the instrument reports, becomes an :class:`~ffzero_lab.rig.InstrumentError` naming the
instrument, its resource, the channel and the command.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import pyvisa
from numpy.typing import NDArray

from ffzero_lab.rig import InstrumentError

T = TypeVar("T")

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(reply: str) -> float | None:
    """The first number in a reply (``"+12.000 V"`` -> 12.0), or None."""
    match = _NUMBER.search(reply)
    return float(match.group()) if match else None


class VisaInstrument:
    """One instrument on an open pyvisa resource (or anything with the same methods).

    Args:
        resource: a pyvisa ``MessageBasedResource``: ``write``, ``read``, ``query``,
            ``query_binary_values``, ``close``, ``timeout`` (ms), ``resource_name``.
        name: the instrument's name in ``instruments.yaml``.
    """

    #: Passed to ``open_resource`` for every resource type.
    resource_options: ClassVar[dict[str, Any]] = {"read_termination": "\n", "write_termination": "\n"}
    #: Passed to ``open_resource`` for serial (ASRL) resources only.
    serial_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, resource: Any, name: str) -> None:
        self.resource = resource
        self.name = name
        #: Time spent inside the resource's calls (pyvisa, the link, the instrument's reply), s.
        self.visa_s = 0.0
        #: CPU time of the calling thread inside those calls (pyvisa's own work), s.
        self.visa_cpu_s = 0.0
        #: Messages sent through the resource.
        self.messages = 0

    def _timed(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)``, its time added to :attr:`visa_s` and :attr:`visa_cpu_s`."""
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            self.visa_s += time.perf_counter() - started
            self.visa_cpu_s += time.thread_time() - cpu

    def _failure(self, exc: Exception, command: str | None, channel: int | None) -> InstrumentError:
        where = getattr(self.resource, "resource_name", "?")
        if isinstance(exc, pyvisa.errors.VisaIOError) and exc.error_code == pyvisa.constants.StatusCode.error_timeout:
            message = f"no reply from {where} within {self.resource.timeout} ms"
        elif isinstance(exc, ValueError):  # pyvisa could not parse a binary block (junk or truncated)
            message = f"malformed binary block from {where}: {exc}"
        else:
            message = f"I/O error on {where}: {getattr(exc, 'description', None) or exc}"
        return InstrumentError(message, self.name, channel, command, transient=True)

    def write(self, command: str, channel: int | None = None) -> None:
        """Send a command that has no reply."""
        self.messages += 1
        try:
            self._timed(self.resource.write, command)
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._failure(exc, command, channel) from None

    def write_lines(self, commands: list[str], channel: int | None = None) -> None:
        """Send several commands in one transfer (each ended by the write termination, ``\\n``):
        one packet on a socket, where separate small writes would wait for each other (Nagle)."""
        self.messages += len(commands)
        data = "".join(f"{command}\n" for command in commands).encode("ascii")
        try:
            self._timed(self.resource.write_raw, data)
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._failure(exc, "; ".join(commands), channel) from None

    def query(self, command: str, channel: int | None = None) -> str:
        """Send a command and return its reply line (stripped)."""
        self.messages += 1
        try:
            return self._timed(self.resource.query, command).strip()
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._failure(exc, command, channel) from None

    def read_line(self, command: str, channel: int | None = None) -> str:
        """Read one more reply line of ``command`` (multi-line replies)."""
        try:
            return self._timed(self.resource.read).strip()
        except (pyvisa.errors.Error, OSError) as exc:
            raise self._failure(exc, command, channel) from None

    def query_float32_block(self, command: str, channel: int | None = None) -> NDArray[np.float64]:
        """Send a query answered by an IEEE-488.2 binary block of little-endian float32."""
        self.messages += 1
        try:
            values = self._timed(self.resource.query_binary_values, command, datatype="f", is_big_endian=False,
                                 container=np.array)
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise self._failure(exc, command, channel) from None
        return np.asarray(values, dtype=np.float64)

    def read_float32_block(self, command: str, channel: int | None = None) -> NDArray[np.float64]:
        """Read the IEEE-488.2 float32 block answering ``command``, already sent with :meth:`write`."""
        try:
            values = self._timed(
                self.resource.read_binary_values, datatype="f", is_big_endian=False, container=np.array
            )
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise self._failure(exc, command, channel) from None
        return np.asarray(values, dtype=np.float64)

    def query_number(self, command: str, channel: int | None = None) -> float:
        """Send a query whose reply holds a number."""
        reply = self.query(command, channel)
        value = parse_number(reply)
        if value is None:
            raise InstrumentError(f"expected a number, got {reply!r}", self.name, channel, command)
        return value

    def raise_scpi_error(self, after: str) -> None:
        """Ask a SCPI instrument for its oldest error (``SYST:ERR?``) and raise it, if any.

        Args:
            after: the command(s) that were sent, named in the exception.
        """
        reply = self.query(":SYST:ERR?")
        code = parse_number(reply)
        if code is None:
            raise InstrumentError(f"unexpected error-queue reply {reply!r}", self.name, None, after)
        if code != 0:
            raise InstrumentError(f"instrument reports error {reply}", self.name, None, after)

    def close(self) -> None:
        """Close the resource."""
        self.resource.close()

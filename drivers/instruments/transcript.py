"""Command transcripts at the pyvisa resource edge, as PyMeasure's ``expected_protocol``: the
test of an instrument driver without its instrument (docs/drivers.md shows one).

* :class:`Recorder` wraps a real (pyvisa-sim) resource and logs ``(sent, received)`` pairs.
* :class:`ExpectedProtocol` is a fake resource that plays a transcript: every call must send the
  next expected command, and gets the listed reply (text, or bytes for a binary block).

A pair is ``(command, reply)``: ``(cmd, None)`` a write, ``(cmd, reply)`` a query,
``(None, reply)`` a further line read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyvisa
from pyvisa.util import from_ieee_block, to_ieee_block

Pair = tuple[str | None, str | bytes | None]

#: A reply that never comes: the fake raises pyvisa's timeout error.
TIMEOUT = object()


def float32_block(values: list[float]) -> bytes:
    """An IEEE-488.2 definite-length block of little-endian float32, as the N774x sends."""
    return bytes(to_ieee_block(np.asarray(values, dtype="<f4").tolist(), datatype="f", is_big_endian=False))


class Recorder:
    """A pyvisa resource that logs every exchange in :attr:`log`."""

    def __init__(self, resource: Any) -> None:
        self.resource = resource
        self.log: list[Pair] = []

    @property
    def resource_name(self) -> str:
        return self.resource.resource_name

    @property
    def timeout(self) -> float:
        return self.resource.timeout

    def write(self, command: str) -> None:
        self.log.append((command, None))
        self.resource.write(command)

    def query(self, command: str) -> str:
        self.log.append((command, None))
        reply = self.resource.query(command)
        self.log[-1] = (command, reply.strip())
        return reply

    def read(self) -> str:
        reply = self.resource.read()
        self.log.append((None, reply.strip()))
        return reply

    def close(self) -> None:
        self.resource.close()


class ExpectedProtocol:
    """A fake resource that insists on a transcript; :meth:`assert_done` checks it was used up."""

    resource_name = "FAKE::INSTR"
    timeout = 100

    def __init__(self, pairs: list[Pair] | list[tuple[Any, Any]]) -> None:
        self.pairs = list(pairs)
        self.index = 0

    def _next(self, command: str | None) -> Any:
        assert self.index < len(self.pairs), f"unexpected {command!r}: the transcript is used up"
        expected, reply = self.pairs[self.index]
        assert command == expected, f"step {self.index}: sent {command!r}, expected {expected!r}"
        self.index += 1
        if reply is TIMEOUT:
            raise pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)
        return reply

    def write(self, command: str) -> None:
        reply = self._next(command)
        assert reply is None, f"{command!r} is a query in the transcript (reply {reply!r})"

    def write_raw(self, data: bytes) -> None:
        """Several commands in one transfer: each line must be the next write of the transcript."""
        assert data.endswith(b"\n"), f"{data!r} does not end with the write termination"
        for line in data.decode("ascii").split("\n")[:-1]:
            self.write(line)

    def query(self, command: str) -> str:
        reply = self._next(command)
        assert isinstance(reply, str), f"{command!r} expects reply {reply!r}, not a text line"
        return reply + "\n"

    def read(self) -> str:
        reply = self._next(None)
        assert isinstance(reply, str)
        return reply + "\n"

    def query_binary_values(self, command: str, datatype: str = "f", is_big_endian: bool = False,
                            container: Any = list) -> Any:
        reply = self._next(command)
        assert isinstance(reply, bytes), f"{command!r} expects a text reply, not a binary block"
        return from_ieee_block(reply, datatype, is_big_endian, container)

    def close(self) -> None:
        pass

    def assert_done(self) -> None:
        assert self.index == len(self.pairs), f"unused transcript: {self.pairs[self.index:]}"

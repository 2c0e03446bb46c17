"""Qontrol Q8iv / Q8b multichannel heater driver, in its ASCII serial command set.

Lines are ``<cmd><channel><op><value>\\n`` at 115200 baud, 8N1. Daisy-chained modules appear as
one instrument with ``nchan?`` channels, numbered from 0.

| command | meaning | reply |
| --- | --- | --- |
| ``V3=1.2340`` | set channel 3 to 1.2340 V | ``OK`` |
| ``VVEC0=v0,v1,...`` | set a run of channels from 0 in one line, V | ``OK`` |
| ``I3=5.000`` | set channel 3 to 5.000 mA (current mode) | ``OK`` |
| ``VMAX3=6.0000``, ``IMAX3=20.000`` | hardware limits of channel 3, V and mA | ``OK`` |
| ``V3?``, ``I3?`` | channel 3's output, V or mA | a number |
| ``Vall?`` | every channel's output | ``nchan`` lines |
| ``id?``, ``nchan?``, ``vfull?``, ``ifull?`` | identity, channels, full scale | ``Q8iv-0042``, ``24``, ``12.000 V`` |

Errors come back instead of a reply as ``E<code>:<channel>`` and are raised as
:class:`QontrolError`. Full scale is 12 V and 24 mA (Q8iv) or 83.33 mA (Q8b); there is no
output-enable command: 0 V is off.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ffzero_lab.rig import InstrumentError, InstrumentIdentity

from .heater import HeaterDriver, HeaterSettings
from .limits import Unit

#: Error codes of the Q8 family (Qontrol's programming manual and its ``qontrol`` package).
ERROR_CODES: dict[int, str] = {
    0: "unknown error",
    1: "over-voltage",
    2: "over-current",
    3: "power error",
    4: "calibration error",
    5: "output error",
    10: "unknown command",
    11: "unrecognised input parameter",
    12: "unrecognised channel",
    13: "operation forbidden",
    14: "buffer overflow",
    15: "communication error",
    16: "command timed out",
    17: "SPI error",
    18: "ADC error",
    19: "I2C error",
    30: "too many errors, some suppressed",
    31: "firmware trap",
    90: "powered up",
}

_ERROR = re.compile(r"^E(\d+):(\d+)$")

#: Errors of the link, not of the request: the command may succeed when sent again.
TRANSIENT_CODES = frozenset({14, 15, 16})


class QontrolError(InstrumentError):
    """A Qontrol error reply ``E<code>:<channel>``; ``code`` is the error code."""

    def __init__(self, code: int, instrument: str, channel: int, command: str) -> None:
        self.code = code
        description = ERROR_CODES.get(code, "unrecognised error code")
        super().__init__(f"error E{code:02d} ({description})", instrument, channel, command,
                         transient=code in TRANSIENT_CODES)


class QontrolSettings(HeaterSettings):
    """``settings`` of a Qontrol instrument."""

    vector_max: int = Field(
        8, ge=1, description="Most channels set by one VVEC line (longer lines risk E14 buffer overflow)."
    )
    pipeline: int = Field(
        1, ge=1, description="Set lines of one write step sent before their replies are read (1: each line "
        "waits for its OK). More saves a round trip per line; every reply is still read and checked."
    )


class Qontrol(HeaterDriver):
    """Qontrol Q8iv / Q8b: voltage (and current) per channel, limits checked before every write."""

    settings_model: ClassVar[type[QontrolSettings]] = QontrolSettings
    serial_options: ClassVar[dict[str, Any]] = {"baud_rate": 115200}
    settings: QontrolSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._line_plans: dict[bytes, LinePlan] = {}  # channel list (its bytes) -> its lines
        self._line_plans_for = 0  # the vector_max they were cut for

    # -- replies ------------------------------------------------------------------------------
    def _reply(self, command: str, channel: int | None = None) -> str:
        """Send ``command``; return its reply, raising an ``E<code>:<channel>`` reply."""
        return self._check(self.query(command, channel), command)

    def _check(self, reply: str, command: str) -> str:
        error = _ERROR.match(reply)
        if error:
            raise QontrolError(int(error.group(1)), self.name, int(error.group(2)), command)
        return reply

    def _command(self, command: str, channel: int | None = None) -> None:
        """Send a set command and insist on ``OK``."""
        self._expect_ok(self.query(command, channel), command, channel)

    def _expect_ok(self, reply: str, command: str, channel: int | None) -> None:
        """A set command's reply: ``OK``, else an error reply (QontrolError) or anything else
        (InstrumentError), naming the command and channel."""
        if reply == "OK":
            return
        self._check(reply, command)  # an error reply raises QontrolError
        raise InstrumentError(f"expected OK, got {reply!r}", self.name, channel, command)

    def _number(self, command: str, channel: int | None = None) -> float:
        reply = self._reply(command, channel)
        try:
            return float(reply.split()[0])
        except (ValueError, IndexError):
            raise InstrumentError(f"expected a number, got {reply!r}", self.name, channel, command) from None

    # -- identity -----------------------------------------------------------------------------
    def identify(self) -> InstrumentIdentity:
        """``id?``, ``nchan?``, ``vfull?``, ``ifull?`` (reads only)."""
        identity = self._reply("id?")
        return InstrumentIdentity(
            identity=identity,
            model=identity.split("-")[0],
            channels=int(self._number("nchan?")),
            voltage_range_V=(0.0, self._number("vfull?")),
            current_max_mA=self._number("ifull?"),
        )

    def apply_hardware_limits(self) -> None:
        """Program every channel's ``VMAX`` and ``IMAX`` from the configured limits (a backstop
        in the instrument itself, under the driver's own checks)."""
        for channel in range(self.channels):
            self._command(f"VMAX{channel}={self.limits.voltage_max_V[channel]:.4f}", channel)
            self._command(f"IMAX{channel}={self.limits.current_max_mA[channel]:.3f}", channel)

    # -- channel I/O --------------------------------------------------------------------------
    def _write_values(self, channels: NDArray[np.intp], values: NDArray[np.float64], unit: Unit) -> None:
        """Voltages as ``VVEC`` lines over runs of consecutive channels (``V`` for a lone one);
        currents one ``I`` line per channel."""
        if unit == "mA":
            digits = self.decimals[unit]
            for channel, value in zip(channels, values, strict=True):
                self._command(f"I{channel}={value:.{digits}f}", int(channel))
            return
        order, runs = self._line_plan(channels)
        numbers = (values if order is None else values[order]).tolist()
        lines = [(head + template % tuple(numbers[first:end]), start) for start, first, end, head, template in runs]
        depth = self.settings.pipeline
        if depth == 1:
            for command, channel in lines:
                self._command(command, channel)
            return
        # the lines of one step may arrive in any order (the base class made it so): send a
        # batch, then read every reply before judging any, so no reply is left unread
        for i in range(0, len(lines), depth):
            batch = lines[i : i + depth]
            self.write_lines([command for command, _ in batch], batch[0][1])
            replies = [self.read_line(command, channel) for command, channel in batch]
            for (command, channel), reply in zip(batch, replies, strict=True):
                self._expect_ok(reply, command, channel)

    def _line_plan(self, channels: NDArray[np.intp]) -> LinePlan:
        """How a voltage write to ``channels`` is cut into lines (remembered per channel list)."""
        longest = self.settings.vector_max
        if self._line_plans_for != longest:
            self._line_plans.clear()
            self._line_plans_for = longest
        key = channels.tobytes()
        plan = self._line_plans.get(key)
        if plan is None:
            if len(self._line_plans) >= LINE_PLANS_MAX:
                self._line_plans.clear()
            plan = self._line_plans[key] = line_plan(channels, longest, self.decimals["V"])
        return plan

    def _read_voltages_V(self, channels: NDArray[np.intp]) -> NDArray[np.float64]:
        """``Vall?`` when every channel in use is asked for, else ``V<ch>?`` per channel."""
        if channels.size == self.channels and channels.size > 1:
            return self.read_all_voltages_V()[channels]
        return np.array([self._number(f"V{ch}?", int(ch)) for ch in channels])

    def read_all_voltages_V(self) -> NDArray[np.float64]:
        """``Vall?``: the output of every channel of the instrument (``nchan?`` lines), V."""
        total = int(self._number("nchan?"))
        lines = [self._reply("Vall?")] + [self._check(self.read_line("Vall?"), "Vall?") for _ in range(total - 1)]
        try:
            return np.array([float(line.split()[0]) for line in lines])
        except (ValueError, IndexError):
            raise InstrumentError(f"expected {total} numbers, got {lines!r}", self.name, None, "Vall?") from None

    def read_currents_mA(self, channels: list[int] | None = None) -> NDArray[np.float64]:
        """``I<ch>?``: measured heater currents (all channels in use by default), mA."""
        chosen = range(self.channels) if channels is None else channels
        return np.array([self._number(f"I{ch}?", int(ch)) for ch in chosen])


#: How a write is cut into lines: the order to put the values in (None: as given), then per line
#: ``(first channel, first value, end value, "VVEC<ch>=" or "V<ch>=", its %-format for the values)``.
LinePlan = tuple["NDArray[np.intp] | None", list[tuple[int, int, int, str, str]]]

#: Channel lists a Qontrol driver remembers the lines of before it starts afresh.
LINE_PLANS_MAX = 64


def line_plan(channels: NDArray[np.intp], longest: int, digits: int) -> LinePlan:
    """The lines setting ``channels``: a ``VVEC`` line per run of consecutive channels, at most
    ``longest`` long (a ``V`` line for a lone channel), each value with ``digits`` decimals.

    Channels are sorted first; a write step's order between channels does not matter.
    """
    order = None if (np.diff(channels) == 1).all() else np.argsort(channels, kind="stable")
    ch = channels if order is None else channels[order]
    bounds = [0, *(np.flatnonzero(np.diff(ch) != 1) + 1).tolist(), ch.size]
    runs = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        for first in range(start, stop, longest):
            end = min(first + longest, stop)
            channel = int(ch[first])
            head = f"V{channel}=" if end - first == 1 else f"VVEC{channel}="
            runs.append((channel, first, end, head, ",".join([f"%.{digits}f"] * (end - first))))
    return order, runs

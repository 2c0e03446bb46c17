"""What goes wrong at an instrument: a refused or unanswered command, or a request past a limit."""

from __future__ import annotations

from ffzero_lab.core.contract import ParameterRangeError


class InstrumentError(Exception):
    """An instrument replied with an error, replied nonsense, or did not answer.

    Args:
        message: what happened.
        instrument: the instrument's name in ``instruments.yaml``.
        channel: the channel (or port) concerned, if any.
        command: the command that was sent, if any.
        transient: the failure may pass on its own (a timeout, a dropped connection, a
            communication error): the command may be retried after reopening the instrument.
            A refused value or a reply that makes no sense is not transient.
    """

    def __init__(self, message: str, instrument: str, channel: int | None = None, command: str | None = None,
                 transient: bool = False) -> None:
        self.message = message
        self.instrument = instrument
        self.channel = channel
        self.command = command
        self.transient = transient
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"instrument {self.instrument!r}"
        if self.channel is not None:
            where += f" channel {self.channel}"
        sent = f" (command {self.command!r})" if self.command is not None else ""
        return f"{where}: {self.message}{sent}"


class LimitError(ParameterRangeError):
    """A requested value lies outside a channel's limit. Nothing was written.

    Args:
        instrument: the instrument's name.
        channel: the channel.
        value: the requested value, in ``unit``.
        limit: the limit it crosses, in ``unit``.
        unit: ``"V"``, ``"mA"`` or ``"W"``.
        what: which limit, e.g. ``"voltage_max_V"``.
    """

    def __init__(self, instrument: str, channel: int | None, value: float, limit: float, unit: str, what: str) -> None:
        self.instrument, self.channel, self.value, self.limit, self.unit, self.what = (
            instrument, channel, value, limit, unit, what)
        where = f"instrument {instrument!r}" + (f" channel {channel}" if channel is not None else "")
        side = "above" if value > limit else "below"
        super().__init__(
            f"{where}: {value:.6g} {unit} is {side} the limit {what} = {limit:.6g} {unit}; nothing was written"
        )


class PowerBudgetError(LimitError):
    """The heaters' total electrical power would exceed the rig's budget. Nothing was written."""

    def __init__(self, instrument: str, total_W: float, budget_W: float) -> None:
        super().__init__(instrument, None, total_W, budget_W, "W", "power_budget_W (all heaters together)")

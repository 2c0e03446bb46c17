"""The heater-driver base: every write is checked against the channel limits and the power budget
before anything is sent, written in power order, and optionally read back.

A concrete driver (Qontrol, Keithley 2600) supplies only the command set: how to write a batch of
channel values, how to read voltages back, and how to identify the instrument.

The checks run on every write; what depends only on *which* channels are written (their
validation, their limits, their resistances) is worked out once per channel list and remembered
(:class:`ChannelSelection`), so that a write of a list seen before costs a few vectorised
operations over its values: a layer writes the same lists again and again.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.rig import (
    InstrumentError,
    InstrumentIdentity,
    PowerBudget,
    RigConfig,
    power_ordered_steps,
    rising_power_W,
)

from .base import VisaInstrument
from .limits import (
    HeaterLimits,
    Unit,
    check_channel_limits,
    equivalent_voltage_V,
    heater_power_W,
    on_grid_inside,
    quantize_toward_zero,
)

_INTP = np.dtype(np.intp)
_FLOAT = np.dtype(np.float64)

#: Channel lists a driver remembers (:class:`ChannelSelection`) before it starts afresh: few, since
#: a list of a whole 64-mode mesh holds ~130 kB and the lists that recur are few (a mesh, its inputs).
SELECTIONS_MAX = 64


class ChannelSelection:
    """A validated channel list (in range, none twice) with what the checks need of its channels.

    Attributes:
        channels: ``(k,)`` the channels, in the order given (a private copy).
        index: where they sit in per-channel arrays: a slice when they are one ascending run of
            consecutive channels (a view, no gather), else ``channels``.
        resistance_ohm, low_V, high_V: ``(k,)`` their resistances and their fast limit window
            (:attr:`HeaterLimits.voltage_window_V`).
        unipolar: no channel may go below 0 V, so no write can change a heater's sign (the
            crossing check then only matters when a heater was found negative).
    """

    __slots__ = ("channels", "index", "shape", "resistance_ohm", "low_V", "high_V", "unipolar")

    def __init__(self, channels: NDArray[np.intp], limits: HeaterLimits) -> None:
        self.channels = channels
        self.shape = channels.shape
        k = channels.size
        ascending = k > 0 and bool((channels[1:] > channels[:-1]).all())
        run = ascending and int(channels[-1]) - int(channels[0]) == k - 1
        self.index: slice | NDArray[np.intp] = slice(int(channels[0]), int(channels[-1]) + 1) if run else channels
        low, high = limits.voltage_window_V
        self.resistance_ohm = limits.resistance_ohm[self.index].copy()
        self.low_V, self.high_V = low[self.index].copy(), high[self.index].copy()
        self.unipolar = bool((limits.voltage_min_V[self.index] >= 0).all())


class HeaterSettings(BaseModel):
    """Settings every heater driver accepts (``instruments.<name>.settings``)."""

    model_config = ConfigDict(extra="forbid")

    verify: bool = Field(False, description="Read every written channel back and compare.")
    verify_tolerance_V: float = Field(0.01, gt=0, description="Largest accepted read-back difference, V.")


class HeaterDriver(VisaInstrument):
    """A multichannel heater driver whose writes never cross a limit or the power budget.

    Args:
        resource: an open pyvisa resource.
        name: the instrument's name.
        limits: per-channel limits (channels ``0..limits.channels-1``).
        budget: the rig's shared power budget.
        settings: validated driver settings.
    """

    kind: ClassVar[Literal["heater"]] = "heater"
    settings_model: ClassVar[type[BaseModel]] = HeaterSettings
    #: Decimals written for a voltage (V) and a current (mA).
    decimals: ClassVar[dict[str, int]] = {"V": 4, "mA": 3}

    def __init__(
        self, resource: Any, name: str, limits: HeaterLimits, budget: PowerBudget, settings: BaseModel | None = None
    ) -> None:
        super().__init__(resource, name)
        self.limits = limits
        self.budget = budget
        self.settings = settings if settings is not None else self.settings_model()
        self._volts: NDArray[np.float64] | None = None  # what each heater sees now (V, or I*R)
        self._power_W: NDArray[np.float64] | None = None  # what each heater draws now, W
        self._total_W = 0.0  # their sum, W (summed afresh whenever _power_W changes)
        self._maybe_negative = True  # whether a heater may be below 0 V now (False: none is)
        self._selections: dict[bytes, ChannelSelection] = {}  # channel list (its bytes) -> its selection
        self._selections_of: HeaterLimits | None = None  # the limits they were made with

    @classmethod
    def from_config(cls, resource: Any, name: str, rig: RigConfig, budget: PowerBudget | None = None) -> "HeaterDriver":
        """The driver for heater instrument ``name`` of ``rig``; a private budget unless one is shared."""
        settings = cls.settings_model.model_validate(rig.instruments[name].settings)
        limits = HeaterLimits.from_channel_limits(rig.heater_channel_limits(name))
        return cls(resource, name, limits, budget or PowerBudget(rig.power_budget_W), settings)

    # -- what a concrete driver supplies ----------------------------------------------------
    @abstractmethod
    def identify(self) -> InstrumentIdentity:
        """Ask the instrument who it is (reads only)."""

    @abstractmethod
    def _write_values(self, channels: NDArray[np.intp], values: NDArray[np.float64], unit: Unit) -> None:
        """Send already-checked values to channels, in the order given."""

    @abstractmethod
    def _read_voltages_V(self, channels: NDArray[np.intp]) -> NDArray[np.float64]:
        """The instrument's present output voltages of ``channels``, V."""

    # -- state --------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """Number of channels in use."""
        return self.limits.channels

    @property
    def voltages_V(self) -> NDArray[np.float64]:
        """Voltage across each heater as last written (or read by :meth:`sync_state`), V."""
        return self._state().copy()

    @property
    def power_W(self) -> float:
        """Electrical power the heaters draw now, W."""
        self._state()
        return self._drawn_W

    @property
    def _drawn_W(self) -> float:
        assert self._power_W is not None
        return self._total_W

    def sync_state(self) -> NDArray[np.float64]:
        """Read the present outputs so that the power budget counts from the truth. Returns V."""
        volts = np.array(self._read_voltages_V(np.arange(self.channels)), dtype=np.float64)
        self._power_W = heater_power_W(volts, self.limits.resistance_ohm)
        self._total_W = float(self._power_W.sum())
        self._maybe_negative = bool((volts < 0).any())
        self._volts = volts
        self.budget.record_total(self.name, self._total_W)
        return volts.copy()

    def _state(self) -> NDArray[np.float64]:
        return self._volts if self._volts is not None else self.sync_state()

    def read_voltages_V(self, channels: ArrayLike | None = None) -> NDArray[np.float64]:
        """Measured output voltages (all channels by default), V."""
        return self._read_voltages_V(self._channel_array(np.arange(self.channels) if channels is None else channels))

    # -- writing --------------------------------------------------------------------------------
    def set_voltages_V(self, channels: ArrayLike, voltages_V: ArrayLike) -> None:
        """Set channels to voltages, V (quantised toward zero to the instrument's resolution).

        Raises:
            LimitError: a value crosses its channel's limit; PowerBudgetError: the total heater
                power would exceed the budget. In both cases nothing was written.
            InstrumentError: the instrument refused a command or did not answer.
        """
        self._set(channels, voltages_V, "V")

    def set_voltage_V(self, channel: int, voltage_V: float) -> None:
        """Set one channel, V (see :meth:`set_voltages_V`)."""
        self._set([channel], [voltage_V], "V")

    def set_currents_mA(self, channels: ArrayLike, currents_mA: ArrayLike) -> None:
        """Drive channels with currents, mA, where the instrument has a current mode.

        The same checks as :meth:`set_voltages_V` apply, through ``I R`` and ``I^2 R``.
        """
        self._set(channels, currents_mA, "mA")

    def safe_state(self) -> None:
        """Set every channel to its safe value (``safe_V``)."""
        self._set(np.arange(self.channels), self.limits.safe_V, "V")

    def _channel_array(self, channels: ArrayLike) -> NDArray[np.intp]:
        if isinstance(channels, np.ndarray) and channels.dtype == np.intp and channels.ndim == 1:
            array = channels  # the usual case, from the layers: no conversion
        else:
            array = np.atleast_1d(np.asarray(channels))
            if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"instrument {self.name!r}: channels must be a 1-D sequence of integers")
        if array.size == 0:
            return array.astype(np.intp)
        ascending = bool((array[1:] > array[:-1]).all())  # then no channel repeats, and the ends bound it
        low, high = (int(array[0]), int(array[-1])) if ascending else (int(array.min()), int(array.max()))
        if low < 0 or high >= self.channels:
            bad = low if low < 0 else high
            raise ValueError(f"instrument {self.name!r}: channel {bad} is outside 0..{self.channels - 1}")
        if not ascending and np.unique(array).size != array.size:
            raise ValueError(f"instrument {self.name!r}: a channel is given twice")
        return array.astype(np.intp, copy=False)

    def _select(self, channels: ArrayLike) -> ChannelSelection:
        """``channels`` validated (raises ValueError), with their limits: remembered per list."""
        if self._selections_of is not self.limits:  # new limits: nothing remembered holds
            self._selections.clear()
            self._selections_of = self.limits
        if type(channels) is np.ndarray and channels.dtype is _INTP and channels.ndim == 1:
            found = self._selections.get(channels.tobytes())  # the same bytes: the same list, checked before
            if found is not None:
                return found
        array = self._channel_array(channels)
        key = array.tobytes()
        found = self._selections.get(key)
        if found is None:
            if len(self._selections) >= SELECTIONS_MAX:
                self._selections.clear()
            found = self._selections[key] = ChannelSelection(array.copy(), self.limits)
        return found

    def _set(self, channels: ArrayLike, values: ArrayLike, unit: Unit) -> None:
        sel = self._select(channels)
        requested = (
            values if type(values) is np.ndarray and values.dtype is _FLOAT else np.asarray(values, dtype=np.float64)
        )
        if requested.shape != sel.shape:
            requested = np.atleast_1d(requested)
            if requested.shape != sel.shape:
                raise ValueError(f"instrument {self.name!r}: {sel.channels.size} channels but {requested.size} values")
        if not sel.shape[0]:
            return  # nothing to write
        decimals = self.decimals[unit]
        # volts on unipolar channels, all well inside their limits (the usual case): one test
        q = on_grid_inside(requested, decimals, sel.low_V, sel.high_V) if unit == "V" and sel.unipolar else None
        if q is None:
            q = quantize_toward_zero(requested, decimals)
            new_V = equivalent_voltage_V(q, unit, sel.resistance_ohm)
            if not ((new_V >= sel.low_V) & (new_V <= sel.high_V)).all():  # else the exact checks, which raise
                check_channel_limits(self.name, sel.channels, q, unit, self.limits)
        else:
            new_V = q
        index, resistance = sel.index, sel.resistance_ohm
        old_V = self._state()[index]
        assert self._power_W is not None
        new_W = heater_power_W(new_V, resistance)
        drawn_W, others_W = self._total_W, self.budget.others_W(self.name)
        # a channel changing sign is written through 0 (only possible if one is, or may go, below 0 V)
        crossing = (self._maybe_negative or not sel.unipolar) and bool(((old_V * new_V) < 0).any())
        if not sel.unipolar:
            self._maybe_negative = True
        # no order of these writes can cross the budget if every rising channel at its new power and
        # every falling one at its old fit (rising_power_W); drawn + the new powers bounds that from above
        if not crossing and (
            self.budget.fits(self.name, drawn_W + float(new_W.sum()), others_W)
            or self.budget.fits(self.name, drawn_W + rising_power_W(self._power_W[index], new_W), others_W)
        ):
            self._write_step(sel.channels, q, unit, new_V, new_W, index)  # one step: the end state fits too
        else:
            self.budget.check_total(self.name, drawn_W + float((new_W - self._power_W[index]).sum()), others_W)
            falling, crossing_ = power_ordered_steps(old_V, new_V)
            first = falling | crossing_
            steps = ((first, np.where(crossing_, 0.0, q), np.where(crossing_, 0.0, new_V)), (~falling, q, new_V))
            for mask, values_, volts in steps:  # (all worked out before the first write changes old_V)
                if mask.any():
                    self._write_step(sel.channels[mask], values_[mask], unit, volts[mask],
                                     heater_power_W(volts[mask], resistance[mask]))
        if self.settings.verify:
            self._verify(sel.channels, new_V)

    def _write_step(self, channels: NDArray[np.intp], values: NDArray[np.float64], unit: Unit,
                    volts: NDArray[np.float64], power_W: NDArray[np.float64],
                    index: slice | NDArray[np.intp] | None = None) -> None:
        """Write one step (``values`` in ``unit``: ``volts`` V and ``power_W`` W on the heaters).

        The new state (at ``index`` of the per-channel arrays: ``channels`` unless given) is worked
        out before the lines go out, so that only their replies are left for after them; it counts
        (in the budget too) once the instrument has taken them. After a failure it is forgotten:
        the next write reads the instrument first.
        """
        assert self._volts is not None and self._power_W is not None
        where = channels if index is None else index
        total_before = self._total_W
        self._volts[where] = volts
        self._power_W[where] = power_W
        self._total_W = float(self._power_W.sum())
        try:
            self._write_values(channels, values, unit)
        except BaseException:
            self._volts = None  # unknown: the next write reads the instrument first
            # part of it may have been taken: the rig's other heaters count the larger total till then
            self.budget.record_total(self.name, max(total_before, self._total_W))
            raise
        self.budget.record_total(self.name, self._total_W)

    def _verify(self, channels: NDArray[np.intp], expected_V: NDArray[np.float64]) -> None:
        measured = self._read_voltages_V(channels)
        off = np.abs(measured - expected_V) > self.settings.verify_tolerance_V
        if off.any():
            i = int(np.argmax(off))
            raise InstrumentError(
                f"read back {measured[i]:.4f} V after writing {expected_V[i]:.4f} V "
                f"(tolerance {self.settings.verify_tolerance_V} V)",
                self.name, int(channels[i]),
            )

    # -- tables (hardware-timed heater instruments) ----------------------------------------------
    def _on_grid(self, table_V: NDArray[np.float64]) -> NDArray[np.float64]:
        """Voltages as the instrument would put them out, never farther from 0 V than asked, V."""
        return quantize_toward_zero(table_V, self.decimals["V"])

    def check_table(self, channels: ArrayLike, table_V: ArrayLike) -> NDArray[np.float64]:
        """A table of voltages ``(n, k)`` for ``channels`` ``(k,)``, as it would be written, V.

        Every row is held against the channel limits; the power budget against every channel at the
        highest power it has anywhere in the table or now, all at once: so every row, and every state
        between two rows (whatever order the channels change in), fits. Nothing is written.

        Raises:
            LimitError, PowerBudgetError, ParameterRangeError (a value not finite); ValueError (bad
            channels or shape).
        """
        sel = self._select(channels)
        table = np.asarray(table_V, dtype=np.float64)
        if table.ndim != 2 or table.shape[1] != sel.shape[0]:
            raise ValueError(f"instrument {self.name!r}: a table for {sel.shape[0]} channels, not {table.shape}")
        q = self._on_grid(table)
        inside = (q >= sel.low_V) & (q <= sel.high_V)
        for row in np.flatnonzero(~inside.all(axis=1)):  # the exact checks (raise) where the fast one fails
            check_channel_limits(self.name, sel.channels, q[row], "V", self.limits)
        now = self._state()
        assert self._power_W is not None
        peak_V = np.maximum(np.abs(q).max(axis=0, initial=0.0), np.abs(now[sel.index]))
        highest_W = self._total_W - float(self._power_W[sel.index].sum()) + float(
            heater_power_W(peak_V, sel.resistance_ohm).sum())
        self.budget.check_total(self.name, highest_W)
        return q

    def _hold_row(self, channels: NDArray[np.intp], volts: NDArray[np.float64], peak_W: float | None = None) -> None:
        """The channels now hold ``volts`` (a table's last row), V; ``peak_W``: count this total in the
        budget instead, while the table plays."""
        state = self._state()
        assert self._power_W is not None
        state[channels] = volts
        self._power_W[channels] = heater_power_W(volts, self.limits.resistance_ohm[channels])
        self._total_W = float(self._power_W.sum())
        self._maybe_negative = self._maybe_negative or bool((volts < 0).any())
        self.budget.record_total(self.name, self._total_W if peak_W is None else max(peak_W, self._total_W))

"""The heater-driver base: every write is checked against the channel limits and the power budget
before anything is sent, written in power order, and optionally read back.

A concrete driver (Qontrol, Keithley 2600) supplies only the command set: how to write a batch of
channel values, how to read voltages back, and how to identify the instrument.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.instruments import InstrumentError, InstrumentIdentity, RigConfig

from .base import VisaInstrument
from .limits import (
    HeaterLimits,
    PowerBudget,
    Unit,
    check_channel_limits,
    equivalent_voltage_V,
    heater_power_W,
    peak_power_W,
    power_ordered_steps,
    quantize_toward_zero,
)


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
        return float(self._power_W.sum())

    def sync_state(self) -> NDArray[np.float64]:
        """Read the present outputs so that the power budget counts from the truth. Returns V."""
        self._volts = np.asarray(self._read_voltages_V(np.arange(self.channels)), dtype=np.float64)
        self._power_W = heater_power_W(self._volts, self.limits.resistance_ohm)
        self.budget.record(self.name, self._power_W)
        return self._volts.copy()

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

    def _set(self, channels: ArrayLike, values: ArrayLike, unit: Unit) -> None:
        ch = self._channel_array(channels)
        requested = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if requested.shape != ch.shape:
            raise ValueError(f"instrument {self.name!r}: {ch.size} channels but {requested.size} values")
        q = quantize_toward_zero(requested, self.decimals[unit])
        low, high = self.limits.voltage_window_V
        new_V = equivalent_voltage_V(q, unit, self.limits.resistance_ohm[ch])
        if not ((new_V >= low[ch]) & (new_V <= high[ch])).all():  # else the exact checks, which raise
            check_channel_limits(self.name, ch, q, unit, self.limits)
        old_V = self._state()[ch]
        resistance = self.limits.resistance_ohm[ch]
        old_W, new_W = heater_power_W(old_V, resistance), heater_power_W(new_V, resistance)
        unchanged_W = self._drawn_W - float(old_W.sum())
        self.budget.check_total(self.name, unchanged_W + float(new_W.sum()))
        crossing = bool(((old_V * new_V) < 0).any())  # a channel changing sign
        if not crossing and self.budget.fits(self.name, unchanged_W + peak_power_W(old_W, new_W)):
            self._write_step(ch, q, unit, new_V, new_W)  # no order of these writes can cross the budget
        else:
            falling, crossing = power_ordered_steps(old_V, new_V)
            first = falling | crossing
            step_V = np.where(crossing, 0.0, new_V)
            for mask, values_, volts in ((first, np.where(crossing, 0.0, q), step_V), (~falling, q, new_V)):
                if mask.any():
                    self._write_step(ch[mask], values_[mask], unit, volts[mask],
                                     heater_power_W(volts[mask], resistance[mask]))
        if self.settings.verify:
            self._verify(ch, new_V)

    def _write_step(self, channels: NDArray[np.intp], values: NDArray[np.float64], unit: Unit,
                    volts: NDArray[np.float64], power_W: NDArray[np.float64]) -> None:
        """Write one step (``values`` in ``unit``: ``volts`` V and ``power_W`` W on the heaters) and
        note the new state; after a failure the state is read afresh."""
        try:
            self._write_values(channels, values, unit)
        except BaseException:
            self._volts = None  # unknown: the next write reads the instrument first
            raise
        assert self._volts is not None and self._power_W is not None
        self._volts[channels] = volts
        self._power_W[channels] = power_W
        self.budget.record_total(self.name, self._drawn_W)

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

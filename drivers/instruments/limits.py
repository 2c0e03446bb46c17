"""Pure checks on heater writes: quantisation, per-channel limits, power (the budget and the
power-safe write order are the rig's: :class:`ffzero_lab.rig.PowerBudget`,
:func:`ffzero_lab.rig.power_ordered_steps`, shared by a rig's heater drivers and its IO).

Nothing here talks to an instrument; :class:`drivers.instruments.heater.HeaterDriver` runs these
checks on every request before a single byte is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ffzero_lab.core.contract import ParameterRangeError
from ffzero_lab.rig import ChannelLimits, LimitError

Unit = Literal["V", "mA"]


@dataclass(frozen=True)
class HeaterLimits:
    """Per-channel limits of one heater instrument; every array has shape ``(channels,)``.

    Attributes:
        voltage_min_V, voltage_max_V: lowest and highest voltage that may be written, V.
        current_max_mA: highest heater current, mA (caps the voltage at ``I R``).
        resistance_ohm: heater resistance, ohm (power ``V^2 / R``).
        safe_V: the safe value of each channel, V.
    """

    voltage_min_V: NDArray[np.float64]
    voltage_max_V: NDArray[np.float64]
    current_max_mA: NDArray[np.float64]
    resistance_ohm: NDArray[np.float64]
    safe_V: NDArray[np.float64]

    @classmethod
    def from_channel_limits(cls, limits: Sequence[ChannelLimits]) -> "HeaterLimits":
        """Stack the validated per-channel limits of ``instruments.yaml``."""
        def column(field: str) -> NDArray[np.float64]:
            return np.array([getattr(channel, field) for channel in limits], dtype=np.float64)

        return cls(
            *(column(f) for f in ("voltage_min_V", "voltage_max_V", "current_max_mA", "resistance_ohm", "safe_V"))
        )

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.voltage_max_V.shape[0])

    @cached_property
    def voltage_window_V(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(low, high)``, each ``(channels,)``, V: a heater voltage strictly inside passes every
        limit (``voltage_min_V``, ``voltage_max_V``, and ``current_max_mA`` through ``V / R``).

        Shrunk by 1e-9 relative, so that a value on a limit is left to :func:`check_channel_limits`
        (whose arithmetic decides, and names the limit). A fast first test, not a replacement.
        """
        current_V = self.current_max_mA * self.resistance_ohm / 1e3
        high = np.minimum(self.voltage_max_V, current_V)
        low = np.maximum(self.voltage_min_V, -current_V)
        margin = 1e-9 * np.maximum(np.abs(high), np.abs(low)) + 1e-12
        return low + margin, high - margin


def quantize_toward_zero(values: ArrayLike, decimals: int) -> NDArray[np.float64]:
    """Values on the grid ``10**-decimals``, never farther from zero than asked.

    The result formats exactly with ``f"{x:.{decimals}f}"`` and parses back to itself, so the
    value checked is the value written.
    """
    values = np.asarray(values, dtype=np.float64)
    scale = 10.0**decimals
    steps = np.trunc(values * scale)
    q = steps / scale
    # values * scale can round up to the next integer; step back so |q| <= |value|.
    over = np.abs(q) > np.abs(values)
    if over.any():
        q = np.where(over, steps - np.sign(steps), steps) / scale
    return q


def on_grid_inside(values: NDArray[np.float64], decimals: int, low: NDArray[np.float64],
                   high: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """:func:`quantize_toward_zero` of ``values`` when every result lies in ``[low, high]`` and
    ``low > 0`` (a unipolar fast window, :attr:`HeaterLimits.voltage_window_V`), in one test; else
    None, and the caller quantizes and checks the usual way.

    ``trunc(v * 10**decimals) / 10**decimals`` is :func:`quantize_toward_zero` unless the product
    rounded up to an integer, which leaves the result above ``|v|``. Every result at least ``low >
    0`` is positive, so ``v`` is too, and a result at most ``v`` did not round up: it is the
    quantization, and it lies in the window.
    """
    scale = 10.0**decimals
    q = np.trunc(values * scale) / scale
    return q if ((q <= np.minimum(values, high)) & (q >= low)).all() else None


def equivalent_voltage_V(
    values: NDArray[np.float64], unit: Unit, resistance_ohm: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Voltage across each heater for values in ``unit`` (V as is; mA times R)."""
    return values if unit == "V" else values * resistance_ohm / 1e3


def heater_power_W(voltages_V: NDArray[np.float64], resistance_ohm: NDArray[np.float64]) -> NDArray[np.float64]:
    """Electrical power of each heater, ``V^2 / R``, W."""
    return voltages_V**2 / resistance_ohm


def check_channel_limits(
    instrument: str, channels: NDArray[np.intp], values: NDArray[np.float64], unit: Unit, limits: HeaterLimits
) -> None:
    """Raise for the first value outside its channel's voltage or current limit.

    Args:
        instrument: the instrument's name (for the message).
        channels: ``(k,)`` channel numbers.
        values: ``(k,)`` values in ``unit`` (already quantised: the values to be written).
        unit: ``"V"`` or ``"mA"``.
        limits: the instrument's limits.

    Raises:
        ParameterRangeError: a value is not finite.
        LimitError: a value crosses ``voltage_min_V``, ``voltage_max_V`` or ``current_max_mA``
            (a voltage through ``V / R``, a current through ``I R``).
    """
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterRangeError(
            f"instrument {instrument!r} channel {channels[i]}: {values[i]} is not finite; nothing was written"
        )
    resistance = limits.resistance_ohm[channels]
    volts = equivalent_voltage_V(values, unit, resistance)
    milliamps = np.abs(values) if unit == "mA" else np.abs(values) / resistance * 1e3
    via = "" if unit == "V" else " (I*R)"
    checks = (
        (volts, limits.voltage_max_V[channels], volts > limits.voltage_max_V[channels], "V", f"voltage_max_V{via}"),
        (volts, limits.voltage_min_V[channels], volts < limits.voltage_min_V[channels], "V", f"voltage_min_V{via}"),
        (milliamps, limits.current_max_mA[channels], milliamps > limits.current_max_mA[channels], "mA",
         "current_max_mA" + ("" if unit == "mA" else " (V/R)")),
    )
    for value, limit, outside, shown_unit, what in checks if unit == "V" else checks[::-1]:
        if outside.any():
            i = int(np.argmax(outside))
            raise LimitError(instrument, int(channels[i]), float(value[i]), float(limit[i]), shown_unit, what)

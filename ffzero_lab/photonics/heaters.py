"""The thermo-optic phase law of a heater channel, ``phi = phi0 + k V^2``, and its inverse.

A resistive heater of resistance R driven at V dissipates ``V^2 / R`` and shifts the phase of
its waveguide in proportion to that power: ``phi = phi0 + k V^2`` with ``k = pi / (P_pi R)``,
``P_pi`` the power for a pi shift and ``phi0`` the phase at 0 V. Phases are 2 pi periodic, so
the smallest non-negative voltage giving a phase is ``V = sqrt(((phi - phi0) mod 2 pi) / k)``.

This is the one implementation of the law: the rig's calibration, the heater drivers, the
simulated chip's heaters and the emulated chip all convert through :class:`PhaseLaws`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

TWO_PI = 2 * np.pi


class PhaseLaws:
    """The laws of a list of channels, as arrays ``(n,)``.

    Args:
        phi0_rad: phase at 0 V, rad.
        k_rad_per_V2: phase per squared volt, rad/V^2; > 0.

    Raises:
        ValueError: the two differ in shape, or a ``k`` is not positive.
    """

    def __init__(self, phi0_rad: ArrayLike, k_rad_per_V2: ArrayLike) -> None:
        self.phi0_rad = np.asarray(phi0_rad, dtype=np.float64)
        self.k_rad_per_V2 = np.asarray(k_rad_per_V2, dtype=np.float64)
        if self.phi0_rad.shape != self.k_rad_per_V2.shape:
            raise ValueError("phi0_rad and k_rad_per_V2 must have the same shape")
        if not np.all(self.k_rad_per_V2 > 0):
            raise ValueError("k_rad_per_V2 must be positive on every channel")

    @classmethod
    def from_p_pi(cls, phi0_rad: ArrayLike, p_pi_W: ArrayLike, resistance_ohm: ArrayLike) -> PhaseLaws:
        """From the power for a pi shift, W, and the heater resistance, ohm: ``k = pi / (P_pi R)``."""
        k = np.pi / (np.asarray(p_pi_W, dtype=np.float64) * np.asarray(resistance_ohm, dtype=np.float64))
        return cls(phi0_rad, k)

    def _pick(self, channels: ArrayLike | None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if channels is None:
            return self.phi0_rad, self.k_rad_per_V2
        index = np.asarray(channels)
        return self.phi0_rad[index], self.k_rad_per_V2[index]

    def voltages_V(self, phases_rad: ArrayLike, channels: ArrayLike | None = None) -> NDArray[np.float64]:
        """The smallest non-negative voltages giving ``(..., k)`` phases (taken modulo 2 pi), V.

        ``channels``: ``(k,)`` the channels the phases are for; default all ``n``, in order.
        """
        phi0, k = self._pick(channels)
        shift = np.mod(np.asarray(phases_rad, dtype=np.float64) - phi0, TWO_PI)
        return np.sqrt(shift / k)

    def branch_voltages_V(self, phases_rad: ArrayLike, branches: int) -> NDArray[np.float64]:
        """Voltages ``(branches, ..., n)`` giving ``(..., n)`` phases on the branches
        ``phi + 2 pi m``, m = 0..branches-1 (branch 0 is :meth:`voltages_V`), V."""
        shift = np.mod(np.asarray(phases_rad, dtype=np.float64) - self.phi0_rad, TWO_PI)
        turns = TWO_PI * np.arange(branches).reshape((branches,) + (1,) * shift.ndim)
        return np.sqrt((shift[None] + turns) / self.k_rad_per_V2)

    def thermal_shift_rad(self, voltages_V: ArrayLike, channels: ArrayLike | None = None) -> NDArray[np.float64]:
        """``k V^2``: the phase the heaters add to ``phi0`` at ``(..., k)`` voltages, rad."""
        _, k = self._pick(channels)
        v = np.asarray(voltages_V, dtype=np.float64)
        return k * (v * v)

    def unwrapped_rad(self, voltages_V: ArrayLike, channels: ArrayLike | None = None) -> NDArray[np.float64]:
        """``phi0 + k V^2`` at ``(..., k)`` voltages, not reduced modulo 2 pi, rad."""
        phi0, _ = self._pick(channels)
        return phi0 + self.thermal_shift_rad(voltages_V, channels)

    def phases_rad(self, voltages_V: ArrayLike, channels: ArrayLike | None = None) -> NDArray[np.float64]:
        """Phases ``(..., k)`` produced by voltages, modulo 2 pi, rad."""
        return np.mod(self.unwrapped_rad(voltages_V, channels), TWO_PI)

    def highest_V(self, low_rad: float = 0.0, high_rad: float = TWO_PI) -> NDArray[np.float64]:
        """The highest voltage (a supremum) any phase in ``[low, high]`` can need, per channel, V.

        A phase just short of ``phi0`` needs a whole turn: ``sqrt(2 pi / k)``, unless the interval
        stays clear of ``phi0``.
        """
        if high_rad - low_rad >= TWO_PI:
            return np.sqrt(TWO_PI / self.k_rad_per_V2)
        to_phi0 = np.mod(self.phi0_rad - low_rad, TWO_PI)
        whole_turn = (to_phi0 > 0) & (to_phi0 <= high_rad - low_rad)
        shift = np.where(whole_turn, TWO_PI, np.mod(high_rad - self.phi0_rad, TWO_PI))
        return np.sqrt(shift / self.k_rad_per_V2)

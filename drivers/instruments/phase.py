"""Wanted phases -> heater voltages, for thermo-optic phase shifters: ``phi = phi0 + k V^2``.

The fitted calibration (the Stanford group's sin^2-of-a-polynomial fit, crosstalk) belongs to the
calibration command; this is the model every heater channel starts from, and what the driver
path converts through before its limit checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class PhaseCalibration:
    """Per-channel phase response ``phi = phi0 + k V^2``.

    Attributes:
        phi0_rad: ``(channels,)`` phase at 0 V, rad.
        k_rad_per_V2: ``(channels,)`` phase per squared volt, rad/V^2 (``pi / (P_pi R)``); > 0.
    """

    phi0_rad: NDArray[np.float64]
    k_rad_per_V2: NDArray[np.float64]

    def __post_init__(self) -> None:
        if np.shape(self.phi0_rad) != np.shape(self.k_rad_per_V2):
            raise ValueError("phi0_rad and k_rad_per_V2 must have the same shape")
        if not np.all(np.asarray(self.k_rad_per_V2) > 0):
            raise ValueError("k_rad_per_V2 must be positive on every channel")

    @classmethod
    def from_p_pi(cls, phi0_rad: ArrayLike, p_pi_W: ArrayLike, resistance_ohm: ArrayLike) -> "PhaseCalibration":
        """From the power for a pi shift, W, and the heater resistance, ohm: ``k = pi / (P_pi R)``."""
        k = np.pi / (np.asarray(p_pi_W, dtype=np.float64) * np.asarray(resistance_ohm, dtype=np.float64))
        return cls(np.asarray(phi0_rad, dtype=np.float64), k)

    def voltages_V(self, phases_rad: ArrayLike, channels: ArrayLike | None = None) -> NDArray[np.float64]:
        """The smallest non-negative voltages giving ``phases_rad`` (taken modulo 2 pi), V.

        Args:
            phases_rad: ``(..., k)`` wanted phases, rad.
            channels: ``(k,)`` the channels they are for; default all, in order.
        """
        idx = slice(None) if channels is None else np.asarray(channels)
        shift = np.mod(np.asarray(phases_rad, dtype=np.float64) - self.phi0_rad[idx], 2 * np.pi)
        return np.sqrt(shift / self.k_rad_per_V2[idx])

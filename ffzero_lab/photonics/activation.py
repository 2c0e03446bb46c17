"""Electro-optic activation between meshes (Williamson et al., IEEE JSTQE 2019).

A fraction alpha of each mode's power is tapped to a photodiode whose amplified signal drives
a phase modulator on the rest of that mode (ALGORITHM.md):

    f(z) = j sqrt(1 - alpha) exp(-j (g |z|^2 + phi_b) / 2) cos((g |z|^2 + phi_b) / 2) z

Fields are in sqrt(W) of the normalised signal (a unit-power input carries 1 W in all).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ElectroOpticActivation:
    """Field-to-field nonlinearity, element-wise per mode.

    Attributes:
        alpha: tapped power fraction, 0 <= alpha < 1.
        gain: g, radians of modulator phase per watt detected (in normalised power units).
        bias_phase: phi_b, radians (phi_b = pi V_bias / V_pi).
    """

    alpha: float = 0.1
    gain: float = 0.05
    bias_phase: float = 0.0

    def __call__(self, fields: NDArray[np.complexfloating]) -> NDArray[np.complex128]:
        """``(B, N)`` complex fields in, ``(B, N)`` complex fields out."""
        z = np.asarray(fields)
        phase = self.gain * (z.real**2 + z.imag**2) + self.bias_phase
        return 1j * np.sqrt(1.0 - self.alpha) * np.exp(-0.5j * phase) * np.cos(0.5 * phase) * z

    def differentiable(self):
        """TensorFlow version of this activation (for the AD reference methods)."""
        from .mesh_tf import electro_optic  # lazy: imports TensorFlow

        return electro_optic(self.alpha, self.gain, self.bias_phase)

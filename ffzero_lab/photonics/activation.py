"""Electro-optic activation between meshes (Williamson et al., IEEE JSTQE 2019).

A fraction alpha of each mode's power is tapped to a photodiode whose amplified signal drives
a phase modulator on the rest of that mode:

    f(z) = j sqrt(1 - alpha) exp(-j (g |z|^2 + phi_b) / 2) cos((g |z|^2 + phi_b) / 2) z

Fields are in sqrt(W) of the normalised signal (a unit-power input carries 1 W in all) on the
simulated chip, in sqrt(W) of real light on the emulated rig. :func:`electro_optic` is the one
implementation; :class:`ElectroOpticActivation` and the emulated chip both call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def electro_optic(fields: NDArray[np.complexfloating], alpha: float, gain: float,
                  bias_phase: float) -> NDArray[np.complex128]:
    """``f(z)`` above, element-wise on fields ``(..., N)`` (sqrt W).

    Args:
        alpha: tapped power fraction, 0 <= alpha < 1.
        gain: g, radians of modulator phase per watt detected.
        bias_phase: phi_b, radians.
    """
    z = np.asarray(fields)
    phase = gain * (z.real**2 + z.imag**2) + bias_phase
    return 1j * np.sqrt(1.0 - alpha) * np.exp(-0.5j * phase) * np.cos(0.5 * phase) * z


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
        return electro_optic(fields, self.alpha, self.gain, self.bias_phase)

    def differentiable(self):
        """TensorFlow version of this activation (for the AD reference methods)."""
        from ffzero_lab.photonics.differentiable import electro_optic  # lazy: imports TensorFlow

        return electro_optic(self.alpha, self.gain, self.bias_phase)

"""Photodetectors and the laser of a simulated chip: power drift, shot and read noise, ADC.

A reading of optical power P (W) on one port over a bandwidth B (Hz) has shot noise of
standard deviation ``sqrt(2 h nu P B)`` (about 1e-5 of the signal at 1 uW and 1 kHz at 1550 nm)
plus read noise of constant standard deviation; an ADC of ``bits`` over
``[0, range_W]`` quantises and clips it. The laser's power follows a random walk in time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PLANCK = 6.62607015e-34  # J s
LIGHT = 299792458.0  # m/s


@dataclass(frozen=True)
class Detector:
    """Noise and digitisation of every output port.

    Attributes:
        shot_noise: add shot noise.
        bandwidth_Hz: detection bandwidth.
        wavelength_nm: laser wavelength (photon energy of the shot noise).
        read_noise_W: standard deviation of additive read noise, watts.
        adc_bits: ADC resolution; 0 means no quantisation and no clipping.
        range_W: ADC full scale, watts.
    """

    shot_noise: bool = False
    bandwidth_Hz: float = 1e3
    wavelength_nm: float = 1550.0
    read_noise_W: float = 0.0
    adc_bits: int = 0
    range_W: float = 1e-3

    @property
    def ideal(self) -> bool:
        return not self.shot_noise and self.read_noise_W == 0.0 and self.adc_bits == 0

    def read(self, power_W: NDArray[np.floating], rng: np.random.Generator) -> NDArray[np.float64]:
        """Readings (W) of optical powers ``power_W`` (any shape), noise drawn from ``rng``."""
        p = np.asarray(power_W, dtype=np.float64)
        if self.ideal:
            return p
        variance = np.full(p.shape, self.read_noise_W**2)
        if self.shot_noise:
            photon = PLANCK * LIGHT / (self.wavelength_nm * 1e-9)
            variance = variance + 2.0 * photon * np.clip(p, 0.0, None) * self.bandwidth_Hz
        reading = p + np.sqrt(variance) * rng.standard_normal(p.shape)
        if self.adc_bits:
            step = self.range_W / (2**self.adc_bits - 1)
            reading = np.clip(np.round(reading / step), 0, 2**self.adc_bits - 1) * step
        return reading


class LaserDrift:
    """Relative laser power ``1 + d(t)``, d a Gaussian random walk of ``sigma`` per sqrt(second).

    Args:
        sigma: random-walk amplitude per sqrt(s); 0 means a steady laser.
        rng: the device's generator.
    """

    def __init__(self, sigma: float, rng: np.random.Generator) -> None:
        self.sigma = sigma
        self.rng = rng
        self.time_s = 0.0
        self.level = 0.0

    def factors(self, times_s: NDArray[np.floating]) -> NDArray[np.float64]:
        """Power factors at increasing times ``(S,)`` (s); advances the walk to the last one."""
        times_s = np.asarray(times_s, dtype=np.float64)
        if self.sigma == 0.0 or times_s.size == 0:
            if times_s.size:
                self.time_s = float(times_s[-1])
            return np.ones(times_s.shape)
        dt = np.diff(np.concatenate([[self.time_s], times_s]))
        steps = self.sigma * np.sqrt(np.clip(dt, 0.0, None)) * self.rng.standard_normal(dt.shape)
        levels = self.level + np.cumsum(steps)
        self.level, self.time_s = float(levels[-1]), float(times_s[-1])
        return 1.0 + levels

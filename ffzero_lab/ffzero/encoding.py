"""Host-side input encodings: data features -> the signal fed to the first layer."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

Encoding = Literal["amplitude", "intensity", "raw"]

_TINY = 1e-30


def amplitude(x: NDArray[np.floating]) -> NDArray[np.float64]:
    """Pixel values as field amplitudes, all in phase, normalised to unit optical power.

    ``(B, F)`` -> ``(B, F)`` with ``sum_i a_i^2 = 1`` per row (sqrt(W) for a 1 W input), so a
    layer's output scale does not depend on the image's brightness. An all-zero row stays 0.
    """
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _TINY)


def intensity(x: NDArray[np.floating]) -> NDArray[np.float64]:
    """Pixel values as optical powers: amplitudes ``sqrt(x)``, normalised to unit power."""
    return amplitude(np.sqrt(np.clip(np.asarray(x, dtype=np.float64), 0.0, None)))


def encode(x: NDArray[np.floating], kind: Encoding) -> NDArray[np.float64]:
    """Apply the named encoding; ``raw`` passes features through (digital layers)."""
    if kind == "amplitude":
        return amplitude(x)
    if kind == "intensity":
        return intensity(x)
    if kind == "raw":
        return np.asarray(x, dtype=np.float64)
    raise ValueError(f"unknown encoding {kind!r}")

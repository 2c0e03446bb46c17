"""Goodness: cosine similarity between a tap reading and prototypes (ALGORITHM.md eq. 4)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_TINY = 1e-30


def centre(taps: NDArray[np.floating]) -> NDArray[np.float64]:
    """Subtract each reading's mean over its ports: ``I - mean(I)``, shape preserved ``(..., P)``."""
    taps = np.asarray(taps, dtype=np.float64)
    return taps - taps.mean(axis=-1, keepdims=True)


def cosine_goodness(
    taps: NDArray[np.floating], prototypes: NDArray[np.floating], centred: bool = False
) -> NDArray[np.float64]:
    """``G_c(z) = z . p_c / ||z||`` for every reading and prototype.

    Args:
        taps: ``(..., P)`` tap readings (any unit: the cosine is scale-free).
        prototypes: ``(C, P)`` unit prototypes.
        centred: centre each reading over its ports first (for non-negative intensity taps).

    Returns:
        ``(..., C)`` goodness in [-1, 1]. A zero reading has goodness 0 for every class.
    """
    z = centre(taps) if centred else np.asarray(taps, dtype=np.float64)
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    return (z @ np.asarray(prototypes, dtype=np.float64).T) / np.maximum(norm, _TINY)

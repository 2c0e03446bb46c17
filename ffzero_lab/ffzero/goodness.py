"""Goodness: cosine similarity between a tap reading and prototypes, ``G[c] = cos(t, p_c) =
t . p_c / (|t| |p_c|)`` for the tap ``t`` of a layer and its class prototypes ``p_c``.

Channel-wise layers (conv) first project each channel's feature map by a fixed random matrix
(``t_g = R_g m_g`` for channel g's map ``m_g``) and score every channel on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def random_projection(channels: int, ports: int, dims: int, seed: int | np.random.SeedSequence) -> NDArray[np.float64]:
    """Fixed random matrices ``R`` that map each channel's feature map to ``dims`` dimensions.

    Args:
        channels: G, output channels of a channel-wise layer.
        ports: P_g, tap readings per channel (its flattened feature map).
        dims: d, the projected dimension (where the prototypes live).
        seed: chosen before training and stored with the run.

    Returns:
        ``(G, d, P_g)``, entries ~ N(0, 1 / P_g) (the cosine that follows is scale-free).
    """
    rng = np.random.default_rng(seed)
    return rng.standard_normal((channels, dims, ports)) / np.sqrt(ports)


@dataclass(frozen=True)
class TapGoodness:
    """How one layer's tap is scored against its prototypes.

    Attributes:
        prototypes: ``(C, D)`` unit prototypes; D is the layer's ports, or the projected
            dimension d of a channel-wise layer.
        centred: centre each reading over its ports (each channel's over its own) first.
        projection: ``(G, d, P_g)`` fixed random matrices of a channel-wise layer with G
            channels of P_g ports each (``r_g = R_g vec(z_g)``), or None.
    """

    prototypes: NDArray[np.float64]
    centred: bool
    projection: NDArray[np.float64] | None = None

    @property
    def channels(self) -> int:
        """G: goodness values per class (1 unless channel-wise)."""
        return 1 if self.projection is None else int(self.projection.shape[0])

    def projected(self, taps: NDArray[np.floating]) -> NDArray[np.float64]:
        """What the prototypes are compared with: ``(..., P) -> (..., G, D)``, each channel's
        (centred) map projected, ``r_g = R_g vec(z_g)``; a whole layer's (centred) tap for G = 1."""
        if self.projection is None:
            z = np.asarray(taps, dtype=np.float64)[..., None, :]
            return centre(z) if self.centred else z
        g, _, ports = self.projection.shape
        z = np.asarray(taps, dtype=np.float64).reshape(*np.shape(taps)[:-1], g, ports)
        if self.centred:
            z = centre(z)
        return np.einsum("...gp,gdp->...gd", z, self.projection, optimize=True)

    def per_channel(self, taps: NDArray[np.floating]) -> NDArray[np.float64]:
        """Goodness of every channel: ``(..., P) -> (..., G, C)`` (G = 1 for a whole layer)."""
        return cosine_goodness(self.projected(taps), self.prototypes)

    def __call__(self, taps: NDArray[np.floating]) -> NDArray[np.float64]:
        """The layer's goodness ``(..., P) -> (..., C)``: the mean over its channels."""
        return self.per_channel(taps).mean(axis=-2)

    def view(self, tap: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """One reading as the prototypes see it, for display.

        Args:
            tap: ``(P,)`` one sample's tap readings.

        Returns:
            ``(D,)`` what the prototypes are compared with (the centred tap, or channel 0's
            projection for a channel-wise layer) scaled to unit length, and ``(C,)`` the
            reading's goodness ``cos(t, p_c)`` for every class (the mean over channels).
        """
        z = self.projected(tap)[0]
        return z / max(float(np.linalg.norm(z)), _TINY), self(tap)

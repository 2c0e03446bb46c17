"""Central-difference directional-derivative gradient estimate of a loss L of n parameters:

    v_k = u_k / ||u_k||,  u_k ~ N(0, I_n)
    d_k = [L(theta + eps v_k) - L(theta - eps v_k)] / (2 eps)
    g   = (n / K) sum_k d_k v_k

The 2K settings of one step are built as one ``(2K, n)`` array so a device evaluates them as
one batch.

Channel-wise layers (a convolution's output channels) split the n parameters into G equal
blocks whose losses are read separately. Each block then gets its own unit direction
``v_kg`` in R^{n/G} and its own estimate ``g_g = (n/G / K) sum_k d_kg v_kg`` from its own loss:
the G blocks are trained as G independent problems, all perturbed at once, so one batch of
2K settings serves every channel.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class DirectionSampler:
    """Draws K random unit directions in R^n, reproducibly from a seed and a step counter.

    Draw number c comes from its own generator ``default_rng([seed, c])``, so any step's
    directions can be rebuilt later from ``(seed, c)`` alone (the run store keeps both for
    every measurement) and a resumed run draws exactly what the uninterrupted one would.
    The Gaussian numbers are drawn as float32 into a reused buffer: for a dense layer, drawing
    them (K x n numbers per step) can cost more than the forward passes.
    """

    def __init__(self, n: int, directions: int, seed: int | np.random.SeedSequence, groups: int = 1) -> None:
        if directions < 1:
            raise ValueError(f"directions must be >= 1, got {directions}")
        if groups < 1 or n % groups:
            raise ValueError(f"{n} parameters do not split into {groups} equal groups")
        self.n = n
        self.directions = directions
        self.groups = groups
        self.seed = int(seed.generate_state(1)[0]) if isinstance(seed, np.random.SeedSequence) else int(seed)
        self.counter = 0
        self._buffer = np.empty((directions, n), dtype=np.float32)

    def draw(self, counter: int | None = None) -> NDArray[np.float32]:
        """``(K, n)`` directions of draw ``counter`` (default: the next one), each of unit norm
        over every one of its ``groups`` blocks.

        The array is reused by the next call.
        """
        if counter is None:
            counter = self.counter
        self.counter = counter + 1
        np.random.default_rng([self.seed, counter]).standard_normal(dtype=np.float32, out=self._buffer)
        blocks = self._buffer.reshape(self.directions, self.groups, -1)
        blocks /= np.linalg.norm(blocks, axis=2, keepdims=True)
        return self._buffer

    def state(self) -> dict[str, int]:
        """Seed and next counter, JSON-serialisable."""
        return {"seed": self.seed, "counter": self.counter}

    def restore(self, state: dict[str, int]) -> None:
        """Restore a state from :meth:`state`."""
        self.seed, self.counter = int(state["seed"]), int(state["counter"])


def perturbed_settings(
    theta: NDArray[np.floating], directions: NDArray[np.floating], eps: float
) -> NDArray[np.float64]:
    """The 2K settings of one step, ``theta + eps v_k`` then ``theta - eps v_k``.

    Args:
        theta: ``(n,)`` base parameters.
        directions: ``(K, n)`` unit directions.
        eps: perturbation size, in the parameters' unit (radians for phases).

    Returns:
        ``(2K, n)``: rows ``0..K-1`` are the plus settings, rows ``K..2K-1`` the minus ones.
    """
    step = eps * directions.astype(np.float64)
    return np.concatenate([theta + step, theta - step], axis=0)


def directional_gradient(
    losses: NDArray[np.floating], directions: NDArray[np.floating], eps: float
) -> NDArray[np.float64]:
    """Gradient estimate ``g = (n/K) sum_k d_k v_k`` from the 2K losses of one step.

    Args:
        losses: ``(2K,)`` losses at :func:`perturbed_settings`' rows, or ``(2K, G)``: one loss
            per block of a channel-wise layer (block g's loss depends only on block g).
        directions: ``(K, n)`` the directions used, of unit norm over each of the G blocks.
        eps: the perturbation size used.

    Returns:
        ``(n,)`` estimate whose expectation is the gradient (to O(eps^2)); with G blocks, block
        g holds ``(n/G / K) sum_k d_kg v_kg``, the gradient of block g's own loss.
    """
    k, n = directions.shape
    losses = np.asarray(losses, dtype=np.float64)
    d = (losses[:k] - losses[k:]) / (2.0 * eps)  # (K,) or (K, G)
    if d.ndim == 2 and d.shape[1] == 1:
        d = d[:, 0]
    if d.ndim == 1:
        return (n / k) * (d @ directions.astype(np.float64))
    groups = d.shape[1]
    blocks = directions.reshape(k, groups, n // groups).astype(np.float64)
    return ((n // groups) / k) * np.einsum("kg,kgm->gm", d, blocks).reshape(n)

"""Directional-derivative gradient estimate of a loss L of n parameters:

    v_k = u_k / ||u_k||,  u_k ~ N(0, I_n)
    d_k = [L(theta + eps v_k) - L(theta - eps v_k)] / (2 eps)      (central difference)
    g   = (n / K) sum_k d_k v_k

Two choices beside the paper's (each a protocol setting, the paper's the default):

* ``orthogonal`` directions: the K Gaussian draws orthonormalised (QR), so each v_k is still
  uniform on the sphere (``E[n v_k v_k^T] = I``, the estimate stays unbiased) but no two
  directions overlap; with K = n the estimate is the gradient itself.
* ``forward`` differences with one shared centre: ``d_k = [L(theta + eps v_k) - L(theta)] / eps``
  from K + 1 settings instead of 2K; biased by ``(eps / 2) v^T H v`` (O(eps), against the central
  difference's O(eps^2)), and the centre's loss is the unperturbed loss of the batch.

The settings of one step are built as one array so a device evaluates them as one batch.

Channel-wise layers (a convolution's output channels) split the n parameters into G equal
blocks whose losses are read separately. Each block then gets its own unit direction
``v_kg`` in R^{n/G} and its own estimate ``g_g = (n/G / K) sum_k d_kg v_kg`` from its own loss:
the G blocks are trained as G independent problems, all perturbed at once, so one batch of
2K settings serves every channel.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray


def orthogonal_misfit(n: int, groups: int, directions: int) -> str | None:
    """Why ``directions`` orthonormal directions cannot be drawn over ``n`` parameters split into
    ``groups`` equal blocks (K orthonormal vectors need K dimensions in each block), or None."""
    block = n // groups
    return None if directions <= block else f"{directions} orthogonal directions do not fit in {block} dimensions"


class DirectionSampler:
    """Draws K random unit directions in R^n, reproducibly from a seed and a step counter.

    Draw number c comes from its own generator ``default_rng([seed, c])``, so any step's
    directions can be rebuilt later from ``(seed, c)`` alone (the run store keeps both for
    every measurement) and a resumed run draws exactly what the uninterrupted one would.
    The Gaussian numbers are drawn as float32 into a reused buffer: for a dense layer, drawing
    them (K x n numbers per step) can cost more than the forward passes.
    """

    def __init__(self, n: int, directions: int, seed: int | np.random.SeedSequence, groups: int = 1,
                 orthogonal: bool = False) -> None:
        if directions < 1:
            raise ValueError(f"directions must be >= 1, got {directions}")
        if groups < 1 or n % groups:
            raise ValueError(f"{n} parameters do not split into {groups} equal groups")
        self.n = n
        self.directions = directions
        self.groups = groups
        problem = orthogonal_misfit(n, groups, directions)
        if orthogonal and problem:
            raise ValueError(problem)
        self.orthogonal = orthogonal
        self.seed = int(seed.generate_state(1)[0]) if isinstance(seed, np.random.SeedSequence) else int(seed)
        self.counter = 0
        self._buffer = np.empty((directions, n), dtype=np.float32)

    def draw(self, counter: int | None = None) -> NDArray[np.float32]:
        """``(K, n)`` directions of draw ``counter`` (default: the next one), each of unit norm
        over every one of its ``groups`` blocks (and, if ``orthogonal``, orthogonal to the
        others within each block).

        The array is reused by the next call.
        """
        if counter is None:
            counter = self.counter
        self.counter = counter + 1
        np.random.default_rng([self.seed, counter]).standard_normal(dtype=np.float32, out=self._buffer)
        blocks = self._buffer.reshape(self.directions, self.groups, -1)
        if self.orthogonal:  # Q of each block's (m, K) Gaussian matrix: Haar-distributed orthonormal columns
            q, r = np.linalg.qr(blocks.transpose(1, 2, 0).astype(np.float64))  # (G, m, K), (G, K, K)
            q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # the sign convention that keeps Q Haar
            blocks[...] = q.transpose(2, 0, 1)
        blocks /= np.linalg.norm(blocks, axis=2, keepdims=True)
        return self._buffer

    def state(self) -> dict[str, int]:
        """Seed and next counter, JSON-serialisable."""
        return {"seed": self.seed, "counter": self.counter}

    def restore(self, state: dict[str, int]) -> None:
        """Restore a state from :meth:`state`."""
        self.seed, self.counter = int(state["seed"]), int(state["counter"])


Difference = Literal["central", "forward"]


def perturbed_settings(
    theta: NDArray[np.floating], directions: NDArray[np.floating], eps: float, difference: Difference = "central"
) -> NDArray[np.float64]:
    """The settings of one step.

    Args:
        theta: ``(n,)`` base parameters.
        directions: ``(K, n)`` unit directions.
        eps: perturbation size, in the parameters' unit (radians for phases).
        difference: ``central`` or ``forward``.

    Returns:
        ``central``: ``(2K, n)``, rows ``0..K-1`` the plus settings ``theta + eps v_k``, rows
        ``K..2K-1`` the minus ones. ``forward``: ``(K + 1, n)``, the K plus settings, then
        ``theta`` itself.
    """
    step = eps * directions.astype(np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    if difference == "forward":
        return np.concatenate([theta + step, theta[None]], axis=0)
    if difference != "central":
        raise ValueError(f"difference must be 'central' or 'forward', got {difference!r}")
    return np.concatenate([theta + step, theta - step], axis=0)


def settings_per_step(directions: int, difference: Difference = "central") -> int:
    """Settings one step evaluates: 2K (central) or K + 1 (forward)."""
    return directions + 1 if difference == "forward" else 2 * directions


def centre_loss(
    losses: NDArray[np.floating], directions: int, difference: Difference = "central"
) -> NDArray[np.float64]:
    """The loss at ``theta`` from one step's losses ``(S,)`` or ``(S, G)``: the centre's own
    (forward), or the mean over each +-pair, ``L(theta) + O(eps^2)`` (central)."""
    losses = np.asarray(losses, dtype=np.float64)
    if difference == "forward":
        return losses[directions]
    return 0.5 * (losses[:directions] + losses[directions:]).mean(axis=0)


def directional_derivatives(
    losses: NDArray[np.floating], directions: int, eps: float, difference: Difference = "central"
) -> NDArray[np.float64]:
    """``d_k`` ``(K,)`` or ``(K, G)`` from the losses of :func:`perturbed_settings`' rows:
    ``(L+ - L-) / (2 eps)`` (central) or ``(L+ - L(theta)) / eps`` (forward)."""
    losses = np.asarray(losses, dtype=np.float64)
    k = directions
    if difference == "forward":
        return (losses[:k] - losses[k]) / eps
    return (losses[:k] - losses[k:]) / (2.0 * eps)


def directional_gradient(
    losses: NDArray[np.floating], directions: NDArray[np.floating], eps: float, difference: Difference = "central"
) -> NDArray[np.float64]:
    """Gradient estimate ``g = (n/K) sum_k d_k v_k`` from the losses of one step.

    Args:
        losses: ``(S,)`` losses at :func:`perturbed_settings`' rows (S = 2K central, K + 1
            forward), or ``(S, G)``: one loss per block of a channel-wise layer (block g's loss
            depends only on block g).
        directions: ``(K, n)`` the directions used, of unit norm over each of the G blocks.
        eps: the perturbation size used.
        difference: how the settings were built.

    Returns:
        ``(n,)`` estimate whose expectation is the gradient (to O(eps^2) central, O(eps)
        forward); with G blocks, block g holds ``(n/G / K) sum_k d_kg v_kg``, the gradient of
        block g's own loss.
    """
    k, n = directions.shape
    d = directional_derivatives(losses, k, eps, difference)  # (K,) or (K, G)
    if d.ndim == 2 and d.shape[1] == 1:
        d = d[:, 0]
    if d.ndim == 1:
        return (n / k) * (d @ directions.astype(np.float64))
    groups = d.shape[1]
    blocks = directions.reshape(k, groups, n // groups).astype(np.float64)
    return ((n // groups) / k) * np.einsum("kg,kgm->gm", d, blocks).reshape(n)

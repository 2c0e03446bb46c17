"""Maximally separated prototype vectors, one per class and layer (ALGORITHM.md, "Prototypes").

Prototypes are drawn at random from a seed and then spread on the unit sphere by repulsion:
projected gradient descent on ``sum_{a<b} exp(t * p_a . p_b)``, renormalising after each step.
With ``centred=True`` they live in the sum-zero hyperplane, the subspace that centred intensity
taps (``I - mean(I)``) can reach.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def _project(p: NDArray[np.float64], centred: bool) -> NDArray[np.float64]:
    if centred:
        p = p - p.mean(axis=-1, keepdims=True)
    return p / np.linalg.norm(p, axis=-1, keepdims=True)


def random_unit_vectors(
    count: int, dim: int, seed: int | np.random.SeedSequence, centred: bool = False
) -> NDArray[np.float64]:
    """``count`` random unit vectors in R^dim, shape ``(count, dim)``, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return _project(rng.standard_normal((count, dim)), centred)


def max_separated_prototypes(
    count: int,
    dim: int,
    seed: int | np.random.SeedSequence,
    centred: bool = False,
    steps: int = 400,
    temperature: float = 10.0,
    step_size: float = 0.05,
) -> NDArray[np.float64]:
    """Unit prototypes whose pairwise cosines are pushed as low as repulsion gets them.

    Args:
        count: number of prototypes C (classes).
        dim: dimension d of the tap they are compared with.
        seed: RNG seed; the same seed gives the same prototypes.
        centred: keep the prototypes in the sum-zero hyperplane (needs ``dim >= 2``).
        steps: repulsion iterations.
        temperature: t in ``exp(t * p_a . p_b)``; larger t weighs the closest pair more.
        step_size: gradient step on the sphere.

    Returns:
        ``(count, dim)`` float64 array of unit vectors.
    """
    if count < 1 or dim < 1:
        raise ValueError(f"need count >= 1 and dim >= 1, got count={count}, dim={dim}")
    if centred and dim < 2:
        raise ValueError("centred prototypes need dim >= 2")
    p = random_unit_vectors(count, dim, seed, centred)
    if count == 1:
        return p
    off_diagonal = ~np.eye(count, dtype=bool)
    for _ in range(steps):
        weights = np.exp(temperature * (p @ p.T)) * off_diagonal  # (C, C)
        grad = temperature * weights @ p  # d/dp_a of the energy
        grad -= np.sum(grad * p, axis=1, keepdims=True) * p  # tangent to the sphere
        scale = np.abs(grad).max()
        p = _project(p - step_size * grad / scale, centred)
    return p


def regression_prototypes(
    label_dims: int, dim: int, seed: int | np.random.SeedSequence, centred: bool = False
) -> NDArray[np.float64]:
    """High-end prototypes for regression, one per label dimension, shape ``(D, dim)``.

    The low-end prototype of each is its antipode, ``p_low = -p_high`` (ALGORITHM.md), so it
    need not be stored.
    """
    return max_separated_prototypes(label_dims, dim, seed, centred)


def min_pairwise_angle(p: NDArray[np.float64]) -> float:
    """Smallest angle between two rows of ``p`` (radians)."""
    cos = p @ p.T
    np.fill_diagonal(cos, -1.0)
    return float(np.arccos(np.clip(cos.max(), -1.0, 1.0)))

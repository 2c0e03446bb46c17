"""Maximally separated prototype vectors, one per class and layer.

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


def _max_cosine(p: NDArray[np.float64]) -> float:
    cos = p @ p.T
    np.fill_diagonal(cos, -np.inf)
    return float(cos.max())


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
    if count == 1 or steps == 0:
        return p
    off_diagonal = ~np.eye(count, dtype=bool)
    best, best_cos = p, _max_cosine(p)
    # Constant steps for the first half, then the step shrinks geometrically to 1 % of
    # step_size so the iterate settles instead of jumping around the optimum; the best
    # arrangement seen is kept.
    settle = steps - steps // 2
    decay = 0.01 ** (1.0 / settle)
    size = step_size
    for i in range(steps):
        weights = np.exp(temperature * (p @ p.T)) * off_diagonal  # (C, C)
        grad = temperature * weights @ p  # d/dp_a of the energy
        grad -= np.sum(grad * p, axis=1, keepdims=True) * p  # tangent to the sphere
        p = _project(p - size * grad / np.abs(grad).max(), centred)
        if i >= steps // 2:
            size *= decay
        cos = _max_cosine(p)
        if cos < best_cos:
            best, best_cos = p, cos
    return best


def regression_prototypes(
    label_dims: int, dim: int, seed: int | np.random.SeedSequence, centred: bool = False
) -> NDArray[np.float64]:
    """High-end prototypes for regression, one per label dimension, shape ``(D, dim)``.

    The low-end prototype of each is its antipode, ``p_low = -p_high`` (target cosine ``2y - 1``), so it
    need not be stored.
    """
    return max_separated_prototypes(label_dims, dim, seed, centred)


def min_pairwise_angle(p: NDArray[np.float64]) -> float:
    """Smallest angle between two rows of ``p`` (radians)."""
    return float(np.arccos(np.clip(_max_cosine(p), -1.0, 1.0)))

"""Maximally separated prototypes (ALGORITHM.md, "Prototypes")."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.ffzero.prototypes import (
    max_separated_prototypes,
    min_pairwise_angle,
    random_unit_vectors,
    regression_prototypes,
)


def simplex_angle(c: int) -> float:
    """Largest possible smallest angle between c unit vectors when c <= d + 1: the simplex."""
    return float(np.arccos(-1.0 / (c - 1)))


@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize(("c", "d"), [(10, 64), (10, 16), (3, 2), (1, 5)])
def test_unit_vectors_of_right_shape(c, d, centred):
    p = max_separated_prototypes(c, d, seed=0, centred=centred)
    assert p.shape == (c, d)
    assert p.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-12)


def test_same_seed_identical_different_seed_different():
    a = max_separated_prototypes(10, 16, seed=7)
    b = max_separated_prototypes(10, 16, seed=7)
    c = max_separated_prototypes(10, 16, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_seed_sequence_accepted_and_reproducible():
    a = max_separated_prototypes(4, 8, seed=np.random.SeedSequence(5))
    b = max_separated_prototypes(4, 8, seed=np.random.SeedSequence(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize(("c", "d"), [(10, 64), (10, 16)])
def test_more_separated_than_random(c, d, centred):
    spread = min_pairwise_angle(max_separated_prototypes(c, d, seed=3, centred=centred))
    random = min_pairwise_angle(random_unit_vectors(c, d, seed=3, centred=centred))
    assert spread > random + np.radians(5)


@pytest.mark.parametrize(("c", "d"), [(10, 64), (10, 16)])
def test_repulsion_starts_from_the_random_draw(c, d):
    """steps=0 returns the seed's random unit vectors: repulsion is what adds the separation."""
    np.testing.assert_allclose(
        max_separated_prototypes(c, d, seed=3, steps=0), random_unit_vectors(c, d, seed=3)
    )


@pytest.mark.parametrize(("c", "d"), [(10, 64), (10, 16), (10, 11)])
def test_centred_prototypes_sum_to_zero(c, d):
    p = max_separated_prototypes(c, d, seed=1, centred=True)
    np.testing.assert_allclose(p.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(random_unit_vectors(c, d, seed=1, centred=True).sum(axis=1), 0.0, atol=1e-12)


def worst_angle_over_seeds(c: int, d: int, centred: bool, **kwargs) -> float:
    return min(
        min_pairwise_angle(max_separated_prototypes(c, d, seed=s, centred=centred, **kwargs))
        for s in range(5)
    )


@pytest.mark.parametrize(
    ("c", "d", "centred"),
    [
        (3, 3, False),
        (5, 8, False),
        (10, 16, False),
        (10, 16, True),
        (10, 64, False),
    ],
)
def test_min_angle_near_simplex_bound(c, d, centred):
    """For C <= d (C <= d - 1 centred) the best arrangement is the regular simplex.

    With the default settings, the worst of five seeds must be within 3 degrees of
    arccos(-1/(C-1)).
    """
    worst = worst_angle_over_seeds(c, d, centred)
    bound = simplex_angle(c)
    assert worst <= bound + 1e-9
    assert np.degrees(bound - worst) < 3.0


@pytest.mark.parametrize(
    ("c", "d", "centred"), [(3, 3, False), (5, 8, False), (10, 16, False), (10, 16, True), (10, 64, False)]
)
def test_small_step_repulsion_reaches_simplex_bound(c, d, centred):
    """The energy gradient and projection are right: with a small step the bound is reached."""
    worst = worst_angle_over_seeds(c, d, centred, step_size=0.005)
    assert np.degrees(simplex_angle(c) - worst) < 2.0


def test_two_prototypes_become_antipodal():
    p = max_separated_prototypes(2, 6, seed=0)
    assert np.degrees(min_pairwise_angle(p)) == pytest.approx(180.0, abs=1.0)


def test_min_pairwise_angle_hand_values():
    p = np.array([[1.0, 0.0], [0.0, 1.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    assert min_pairwise_angle(p) == pytest.approx(np.pi / 4)
    assert min_pairwise_angle(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(np.pi)


def test_regression_prototypes_are_the_separated_prototypes():
    np.testing.assert_array_equal(regression_prototypes(3, 10, seed=2), max_separated_prototypes(3, 10, seed=2))


@pytest.mark.parametrize(("c", "d", "centred"), [(0, 4, False), (3, 0, False), (3, 1, True)])
def test_invalid_sizes_rejected(c, d, centred):
    with pytest.raises(ValueError):
        max_separated_prototypes(c, d, seed=0, centred=centred)

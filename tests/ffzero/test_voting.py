"""Majority vote over layers, ties broken by the last layer (ALGORITHM.md eq. 6)."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.ffzero.voting import majority_vote


def vote_one(layer_votes: list[int], n_classes: int = 5) -> int:
    """Votes of the L layers for a single sample."""
    out = majority_vote(np.array(layer_votes)[:, None], n_classes)
    assert out.shape == (1,)
    return int(out[0])


def test_clear_majority_wins_even_against_last_layer():
    assert vote_one([3, 3, 1]) == 3
    assert vote_one([2, 4, 2, 2, 0]) == 2


def test_unanimous_and_single_layer():
    assert vote_one([4, 4, 4]) == 4
    assert vote_one([1]) == 1


def test_two_two_tie_broken_by_last_layer():
    assert vote_one([1, 2, 2, 1]) == 1
    assert vote_one([1, 2, 1, 2]) == 2


def test_two_layers_disagreeing_gives_last_layer():
    assert vote_one([0, 3]) == 3
    assert vote_one([3, 0]) == 0


def test_last_layer_not_in_tie_latest_tied_layer_decides():
    # classes 1 and 2 tie with 2 votes each; the last layer voted 3, layer 3 (vote 2) is the latest in the tie
    assert vote_one([1, 1, 2, 2, 3]) == 2
    assert vote_one([2, 2, 1, 1, 3]) == 1
    assert vote_one([1, 2, 0, 2, 1, 4]) == 1


def test_all_different_gives_last_layer():
    assert vote_one([0, 1, 2, 3]) == 3


def test_batched_over_samples():
    votes = np.array(
        [  # columns are samples
            [3, 1, 0, 1, 2],
            [3, 2, 3, 1, 0],
            [1, 2, 3, 2, 1],
            [0, 1, 3, 2, 4],
        ]
    )
    expected = [3, 1, 3, 2, 4]
    out = majority_vote(votes, 5)
    assert out.shape == (5,)
    np.testing.assert_array_equal(out, expected)
    for b in range(votes.shape[1]):
        assert vote_one(list(votes[:, b])) == expected[b]


def loop_vote(column: np.ndarray) -> int:
    counts = np.bincount(column, minlength=10)
    tied = set(np.flatnonzero(counts == counts.max()))
    for v in column[::-1]:
        if v in tied:
            return int(v)
    raise AssertionError


@pytest.mark.parametrize("layers", [1, 2, 3, 4, 7])
def test_random_votes_match_reference(layers):
    rng = np.random.default_rng(layers)
    votes = rng.integers(0, 4, (layers, 200))
    out = majority_vote(votes, 10)
    np.testing.assert_array_equal(out, [loop_vote(votes[:, b]) for b in range(200)])

"""Inference by majority vote over layers: ``y_hat = mode_l argmax_c G_l[c]``, each layer l voting
for the class whose prototype its tap is closest to (ties broken by the last layer)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def majority_vote(votes: NDArray[np.integer], n_classes: int) -> NDArray[np.int64]:
    """Majority vote of every layer's class, ties broken by the last layer.

    If the last layer's vote is not among the tied classes, the latest layer whose vote is
    among them decides.

    Args:
        votes: ``(L, B)`` class voted by each layer for each sample.
        n_classes: C.

    Returns:
        ``(B,)`` predicted classes.
    """
    votes = np.asarray(votes, dtype=np.int64)
    counts = np.eye(n_classes, dtype=np.int64)[votes].sum(axis=0)  # (B, C)
    tied = counts == counts.max(axis=1, keepdims=True)  # (B, C)
    in_tie = np.take_along_axis(tied, votes.T, axis=1)  # (B, L)
    latest = votes.shape[0] - 1 - np.argmax(in_tie[:, ::-1], axis=1)  # (B,)
    return votes[latest, np.arange(votes.shape[1])]

"""Layer-local objectives and the global cross-entropy.

Classification: the margin loss ``relu(m - G[y] + lambda G[wrong])`` on a layer's goodness G,
the wrong classes taken as their mean or their max. Regression: ``(G - (2y - 1))^2`` against the
target cosine. BP: softmax cross-entropy of the readout.

All losses take a leading batch of parameter settings ``(...)`` and return one loss per
setting, averaged over the mini-batch, so that the 2K perturbed settings of a step are scored
in one call.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

MarginReduction = Literal["mean", "max"]


def margin_loss(
    goodness: NDArray[np.floating],
    labels: NDArray[np.integer],
    margin: float,
    weight: float = 1.0,
    reduction: MarginReduction = "mean",
) -> NDArray[np.float64]:
    """Classification margin loss.

    ``mean``: ``(1/(C-1)) sum_{c != y} ReLU(m - G_y + lambda G_c)``;
    ``max``:  ``ReLU(m - G_y + lambda max_{c != y} G_c)``.

    Args:
        goodness: ``(..., B, C)`` goodness of every class.
        labels: ``(B,)`` integer class labels.
        margin: m.
        weight: lambda, the weight of the wrong classes.
        reduction: over wrong classes, ``"mean"`` or ``"max"``.

    Returns:
        ``(...)`` loss averaged over the batch.
    """
    goodness = np.asarray(goodness, dtype=np.float64)
    n_classes = goodness.shape[-1]
    onehot = np.eye(n_classes, dtype=bool)[labels]  # (B, C)
    g_true = np.take_along_axis(
        goodness, np.broadcast_to(labels[:, None], goodness.shape[:-1] + (1,)), axis=-1
    )  # (..., B, 1)
    if reduction == "mean":
        hinge = np.maximum(margin - g_true + weight * goodness, 0.0)
        per_sample = np.where(onehot, 0.0, hinge).sum(axis=-1) / (n_classes - 1)
    elif reduction == "max":
        worst = np.where(onehot, -np.inf, goodness).max(axis=-1, keepdims=True)
        per_sample = np.maximum(margin - g_true + weight * worst, 0.0)[..., 0]
    else:
        raise ValueError(f"reduction must be 'mean' or 'max', got {reduction!r}")
    return per_sample.mean(axis=-1)


def regression_loss(
    goodness: NDArray[np.floating], targets: NDArray[np.floating]
) -> NDArray[np.float64]:
    """``sum_d (G_d - (2 y_d - 1))^2``, averaged over the batch.

    Args:
        goodness: ``(..., B, D)`` cosine with each label dimension's high prototype.
        targets: ``(B, D)`` labels normalised to [0, 1].

    Returns:
        ``(...)`` loss.
    """
    t = 2.0 * np.asarray(targets, dtype=np.float64) - 1.0
    return ((np.asarray(goodness) - t) ** 2).sum(axis=-1).mean(axis=-1)


def regression_prediction(goodness: NDArray[np.floating]) -> NDArray[np.float64]:
    """``y_hat = (G + 1) / 2`` in [0, 1], shape preserved."""
    return (np.asarray(goodness, dtype=np.float64) + 1.0) / 2.0


def cross_entropy(logits: NDArray[np.floating], labels: NDArray[np.integer]) -> NDArray[np.float64]:
    """Softmax cross-entropy ``(..., B, C) -> (...)``, averaged over the batch (the BP baselines)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))
    picked = np.take_along_axis(
        shifted, np.broadcast_to(labels[:, None], shifted.shape[:-1] + (1,)), axis=-1
    )[..., 0]
    return (log_norm - picked).mean(axis=-1)

"""Tasks: what a layer's goodness (or the BP readout) is asked to do, and how it is scored.

Classification: one prototype per class, the margin loss, every layer
votes, accuracy. Regression (eq. 7-8): one high-end prototype per label dimension (the
low end is its antipode), target cosine ``t = 2y - 1``, the last layer predicts
``y_hat = (G + 1) / 2``, scored by R^2. The BP baselines read the first C (or D) taps: a
cross-entropy on them for classification, a squared error for regression.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.ffzero.losses import (
    cross_entropy,
    margin_loss,
    regression_loss,
    regression_prediction,
)
from ffzero_lab.ffzero.settings import EstimatorSettings
from ffzero_lab.ffzero.voting import majority_vote


def readout(taps: NDArray[np.floating], width: int, train: EstimatorSettings) -> NDArray[np.float64]:
    """The BP readout ``(..., P) -> (..., width)``: the first ``width`` taps' share of the
    detected power (``power-fraction``, scale-free) or the raw taps."""
    head = np.asarray(taps, dtype=np.float64)[..., :width]
    if train.readout == "power-fraction":
        head = head / np.maximum(taps.sum(axis=-1, keepdims=True), 1e-30)
    return head


def r2_score(predicted: NDArray[np.floating], target: NDArray[np.floating]) -> float:
    """Coefficient of determination over all samples and label dimensions."""
    target = np.asarray(target, dtype=np.float64).reshape(predicted.shape)
    residual = np.sum((predicted - target) ** 2)
    total = np.sum((target - target.mean(axis=0)) ** 2)
    return float(1.0 - residual / total) if total > 0 else float("nan")


class Objective(ABC):
    """A task's losses, predictions and score."""

    #: ``accuracy`` or ``r2``.
    metric: str
    #: Number of prototypes per layer (classes, or label dimensions).
    width: int

    @abstractmethod
    def local_loss(
        self, goodness: NDArray[np.float64], y: NDArray[Any], train: EstimatorSettings
    ) -> NDArray[np.float64]:
        """Layer-local loss ``(..., B, width) -> (...)``, batch mean."""

    @abstractmethod
    def local_predict(self, goodness: NDArray[np.float64]) -> NDArray[Any]:
        """One layer's prediction from its goodness ``(..., B, width)``."""

    @abstractmethod
    def combine(self, predictions: list[NDArray[Any]]) -> NDArray[Any]:
        """The network's prediction from every layer's."""

    @abstractmethod
    def readout_loss(self, taps: NDArray[np.float64], y: NDArray[Any], train: EstimatorSettings) -> NDArray[np.float64]:
        """BP loss from the last layer's taps ``(..., B, P) -> (...)``."""

    @abstractmethod
    def readout_predict(self, taps: NDArray[np.float64], train: EstimatorSettings) -> NDArray[Any]:
        """BP prediction from the last layer's taps."""

    @abstractmethod
    def score(self, predicted: NDArray[Any], y: NDArray[Any]) -> float:
        """Accuracy or R^2 of predictions against labels (mean over leading settings axes)."""


class Classification(Objective):
    metric = "accuracy"

    def __init__(self, n_classes: int) -> None:
        self.width = n_classes

    def local_loss(self, goodness, y, train):
        return margin_loss(goodness, y, train.margin, train.negative_weight, train.negatives)

    def local_predict(self, goodness):
        return goodness.argmax(axis=-1)

    def combine(self, predictions):
        return majority_vote(np.stack(predictions), self.width)

    def readout_loss(self, taps, y, train):
        return cross_entropy(train.logit_scale * readout(taps, self.width, train), y)

    def readout_predict(self, taps, train):
        return readout(taps, self.width, train).argmax(axis=-1)

    def score(self, predicted, y):
        return float(np.mean(predicted == y))


class Regression(Objective):
    metric = "r2"

    def __init__(self, label_dims: int) -> None:
        self.width = label_dims

    def local_loss(self, goodness, y, train):
        return regression_loss(goodness, y)

    def local_predict(self, goodness):
        return regression_prediction(goodness)

    def combine(self, predictions):
        return predictions[-1]  # regression: the last layer predicts, no vote

    def readout_loss(self, taps, y, train):
        return ((readout(taps, self.width, train) - y) ** 2).sum(axis=-1).mean(axis=-1)

    def readout_predict(self, taps, train):
        return readout(taps, self.width, train)

    def score(self, predicted, y):
        if predicted.ndim == 3:  # (S, B, D): mean over settings
            return float(np.mean([r2_score(p, y) for p in predicted]))
        return r2_score(predicted, y)


def objective_for(task: str, width: int) -> Objective:
    """The objective of a data set's task (``classification`` with C classes, ``regression`` with D dims)."""
    return Classification(width) if task == "classification" else Regression(width)

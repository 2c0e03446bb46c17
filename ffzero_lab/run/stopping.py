"""When a training phase stops: early stopping on a validation split, and evaluation budgets.

Both are state kept by the orchestrator for one training phase (a layer for FF methods, the
network for BP methods); the numbers they read are plain (scores, evaluation counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass
class EarlyStopping:
    """Tracks a phase's validation score and keeps its best parameters.

    An epoch improves when its score is higher than the best so far, or equal with a lower
    validation loss. The phase should stop once ``patience`` epochs in a row did not improve
    (``patience`` None: never).

    Attributes:
        patience: epochs without improvement before stopping, or None.
        best_score, best_loss, best_epoch: the best epoch so far (None before the first).
        best_theta: ``(n,)`` its parameters (a copy).
        stale: epochs since the best one.
    """

    patience: int | None
    best_score: float | None = None
    best_loss: float | None = None
    best_epoch: int | None = None
    best_theta: NDArray[np.float64] | None = field(default=None, repr=False)
    stale: int = 0

    def update(self, epoch: int, score: float, loss: float, theta: NDArray[np.float64]) -> bool:
        """Record epoch ``epoch``'s validation ``score`` and ``loss`` at parameters ``theta``;
        True if it is the new best."""
        better = (self.best_score is None or score > self.best_score
                  or (score == self.best_score and self.best_loss is not None and loss < self.best_loss))
        if better:
            self.best_score, self.best_loss, self.best_epoch = score, loss, epoch
            self.best_theta = np.array(theta, dtype=np.float64, copy=True)
            self.stale = 0
        else:
            self.stale += 1
        return better

    def state(self) -> dict[str, NDArray[np.generic]]:
        """Arrays that restore this tracker (:meth:`restore`), for a checkpoint; empty before the first epoch."""
        if self.best_epoch is None or self.best_theta is None:
            return {}
        return {"best_score": np.array(self.best_score), "best_loss": np.array(self.best_loss),
                "best_epoch": np.array(self.best_epoch), "stale": np.array(self.stale), "best_theta": self.best_theta}

    def restore(self, state: dict[str, NDArray[np.generic]]) -> None:
        """Restore a tracker from :meth:`state` (nothing if the state holds none)."""
        if "best_epoch" not in state:
            return
        self.best_score, self.best_loss = float(state["best_score"]), float(state["best_loss"])
        self.best_epoch, self.stale = int(state["best_epoch"]), int(state["stale"])
        self.best_theta = np.asarray(state["best_theta"], dtype=np.float64).copy()

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` epochs in a row have not improved."""
        return self.patience is not None and self.stale >= self.patience


def phase_limit(spent: int, per_phase: int | None, total: int | None, phases_left: int) -> int | None:
    """The evaluation count at which a phase that starts at ``spent`` must stop, or None.

    Args:
        spent: evaluations of the run so far.
        per_phase: the budget of one phase (``train.budget.evaluations_per_layer``), or None.
        total: the budget of the run (``train.budget.evaluations``), or None: the phase gets an
            equal share of what is left, ``(total - spent) / phases_left``.
        phases_left: this phase and the ones after it.

    Returns:
        The smaller of the two limits, as an absolute evaluation count; None when neither is set.
    """
    limits = []
    if per_phase is not None:
        limits.append(spent + per_phase)
    if total is not None:
        limits.append(spent + max(total - spent, 0) // max(phases_left, 1))
    return min(limits) if limits else None

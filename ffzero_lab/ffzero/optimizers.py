"""Optimiser steps fed with a gradient estimate: SGD, momentum and Adam.

Each optimiser keeps its state in a dict of arrays so that it can be stored with a run and
restored on resume. ``step`` returns the new parameters and never touches a device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from numpy.typing import NDArray


class Optimizer(ABC):
    """Base class: ``theta_new = step(theta, g)``."""

    def __init__(self, n: int, lr: float) -> None:
        self.n = n
        self.lr = lr

    @abstractmethod
    def step(self, theta: NDArray[np.float64], grad: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return updated parameters ``(n,)`` from the estimate ``grad`` ``(n,)``."""

    def state(self) -> dict[str, NDArray[np.float64]]:
        """Arrays that define the optimiser's state."""
        return {}

    def restore(self, state: dict[str, NDArray[np.float64]]) -> None:
        """Restore a state from :meth:`state`."""


class SGD(Optimizer):
    """``theta <- theta - lr * g`` (the paper's plain step)."""

    def step(self, theta: NDArray[np.float64], grad: NDArray[np.float64]) -> NDArray[np.float64]:
        return theta - self.lr * grad


class Momentum(Optimizer):
    """Heavy-ball momentum: ``m <- beta m + g``, ``theta <- theta - lr m``."""

    def __init__(self, n: int, lr: float, beta: float = 0.9) -> None:
        super().__init__(n, lr)
        self.beta = beta
        self.m = np.zeros(n)

    def step(self, theta: NDArray[np.float64], grad: NDArray[np.float64]) -> NDArray[np.float64]:
        self.m = self.beta * self.m + grad
        return theta - self.lr * self.m

    def state(self) -> dict[str, NDArray[np.float64]]:
        return {"m": self.m.copy()}

    def restore(self, state: dict[str, NDArray[np.float64]]) -> None:
        self.m = np.asarray(state["m"], dtype=np.float64).copy()


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""

    def __init__(
        self, n: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(n, lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(n)
        self.v = np.zeros(n)
        self.t = 0

    def step(self, theta: NDArray[np.float64], grad: NDArray[np.float64]) -> NDArray[np.float64]:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict[str, NDArray[np.float64]]:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": np.array(self.t)}

    def restore(self, state: dict[str, NDArray[np.float64]]) -> None:
        self.m = np.asarray(state["m"], dtype=np.float64).copy()
        self.v = np.asarray(state["v"], dtype=np.float64).copy()
        self.t = int(state["t"])


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name: str, n: int, lr: float) -> Optimizer:
    """Optimiser by name (``sgd``, ``momentum``, ``adam``) for ``n`` parameters."""
    try:
        return OPTIMIZERS[name](n, lr)
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}") from None


def learning_rate(lr: float, schedule: str, progress: float, final_fraction: float) -> float:
    """Learning rate at ``progress`` in [0, 1] of a training phase.

    ``constant``: ``lr``. ``cosine``: from ``lr`` down to ``final_fraction * lr`` along half a
    cosine.
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * (final_fraction + (1 - final_fraction) * 0.5 * (1 + np.cos(np.pi * min(max(progress, 0.0), 1.0))))
    raise ValueError(f"unknown schedule {schedule!r}")

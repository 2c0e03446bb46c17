"""Synthetic regression tasks with 2-D and 5-D inputs (the paper's function benchmarks).

The paper does not print its two functions; these are two standard smooth nonlinear
benchmarks of those input sizes:

* ``franke-2d``: Franke's function on [0, 1]^2 (Franke 1979), a sum of four Gaussian bumps,
  ``0.75 exp(-((9x-2)^2 + (9y-2)^2)/4) + 0.75 exp(-(9x+1)^2/49 - (9y+1)/10)
  + 0.5 exp(-((9x-7)^2 + (9y-3)^2)/4) - 0.2 exp(-(9x-4)^2 - (9y-7)^2)``;
* ``friedman-5d``: Friedman's function #1 on [0, 1]^5 (Friedman 1991),
  ``10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5``.

Inputs are drawn uniformly from a fixed seed (8,000 train, 2,000 test samples, no noise);
targets are min-max normalised to [0, 1] by the training split's range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.data.dataset import Dataset


def franke(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Franke's function, ``(n, 2) -> (n,)``."""
    a, b = 9 * x[:, 0], 9 * x[:, 1]
    return (0.75 * np.exp(-((a - 2) ** 2 + (b - 2) ** 2) / 4) + 0.75 * np.exp(-((a + 1) ** 2) / 49 - (b + 1) / 10)
            + 0.5 * np.exp(-((a - 7) ** 2 + (b - 3) ** 2) / 4) - 0.2 * np.exp(-((a - 4) ** 2) - (b - 7) ** 2))


def friedman1(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Friedman's function #1, ``(n, 5) -> (n,)``."""
    return 10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]


SYNTHETIC: dict[str, tuple[int, Callable[[NDArray[np.float64]], NDArray[np.float64]]]] = {
    "franke-2d": (2, franke),
    "friedman-5d": (5, friedman1),
}


def regression_set(name: str, n_train: int = 8000, n_test: int = 2000, seed: int = 0) -> Dataset:
    """A synthetic regression data set by name (see :data:`SYNTHETIC`)."""
    dims, function = SYNTHETIC[name]
    rng = np.random.default_rng([seed, dims])
    x = rng.random((n_train + n_test, dims))
    y = function(x)
    low, high = y[:n_train].min(), y[:n_train].max()
    y = ((y - low) / (high - low))[:, None]
    return Dataset(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], 0, (1, dims), "regression")

"""The :class:`Dataset` every loader returns (arrays only, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Dataset:
    """A train/test split.

    Attributes:
        name: the set's name.
        x_train, x_test: ``(samples, features)`` float64 in [0, 1].
        y_train, y_test: ``(samples,)`` int64 class labels, or for regression ``(samples, D)``
            float64 targets min-max normalised to [0, 1] (by the training split's range).
        n_classes: C (0 for regression).
        image_shape: (height, width) of one sample; (1, features) for tabular data.
        task: ``classification`` or ``regression``.
    """

    name: str
    x_train: NDArray[np.float64]
    y_train: NDArray[np.generic]
    x_test: NDArray[np.float64]
    y_test: NDArray[np.generic]
    n_classes: int
    image_shape: tuple[int, int]
    task: str = "classification"

    @property
    def features(self) -> int:
        """Features per sample."""
        return int(self.x_train.shape[1])

    @property
    def width(self) -> int:
        """Prototypes a layer needs: C classes, or D label dimensions."""
        return self.n_classes if self.task == "classification" else int(self.y_train.shape[1])

    def as_scalar_regression(self) -> "Dataset":
        """The class label read as a number, min-max normalised to [0, 1] (e.g. MNIST 0-9)."""
        top = float(max(self.y_train.max(), 1))
        return Dataset(self.name, self.x_train, (self.y_train / top)[:, None], self.x_test,
                       (self.y_test / top)[:, None], 0, self.image_shape, "regression")

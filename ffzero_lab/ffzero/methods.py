"""The four training methods the FFzero paper compares, one code path each.

| method  | loss                                  | gradient                                        |
| ------- | ------------------------------------- | ----------------------------------------------- |
| ``ff-dd`` | layer-local margin loss (FFzero)    | directional derivatives inside one layer        |
| ``ff-ad`` | layer-local margin loss             | automatic differentiation inside one layer      |
| ``bp-dd`` | global cross-entropy on the readout | directional derivatives over the whole network  |
| ``bp-ad`` | global cross-entropy on the readout | automatic differentiation through the network   |

Each method is an :class:`Estimator`: it owns the parameters it trains (one layer, or every
layer), gives a loss and a gradient for a mini-batch, writes parameters back to the device,
and scores its own predictions. The DD estimators only ever *evaluate* the device; the AD ones
need the device's differentiable model (:meth:`PhysicalLayer.differentiable`) and are
references, not physical procedures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.network import Network
from ffzero_lab.ffzero.goodness import TapGoodness
from ffzero_lab.ffzero.objectives import Objective
from ffzero_lab.ffzero.perturbation import DirectionSampler, centre_loss, directional_gradient, perturbed_settings
from ffzero_lab.ffzero.settings import EstimatorSettings

LOCAL_METHODS = ("ff-dd", "ff-ad")
GLOBAL_METHODS = ("bp-dd", "bp-ad")


@dataclass(frozen=True)
class StepResult:
    """What one mini-batch step measured and estimated.

    Attributes:
        loss: mean loss over the batch (over the 2K settings for DD).
        grad: ``(n,)`` gradient estimate.
        evaluations: device evaluations spent (one input under one setting of one layer).
        accuracy: the method's own score on the batch (accuracy, or R^2 for regression; mean
            over settings for DD), or None.
        readings: the raw tap readings taken, ``(2K, B, ports)`` for DD, ``(B, ports)`` for AD.
        direction_draw: the direction sampler's draw number (DD), or None.
        centre: the batch's loss at the unperturbed parameters: measured (forward differences,
            AD), or the mean of each +-pair (central differences, to O(eps^2)).
    """

    loss: float
    grad: NDArray[np.float64]
    evaluations: int
    accuracy: float | None = None
    readings: NDArray[np.floating] | None = None
    direction_draw: int | None = None
    centre: float | None = None


@dataclass(frozen=True)
class Split:
    """Inputs and labels of one split, as seen by the parameters being trained.

    Attributes:
        x: ``(samples, width)`` inputs of the trained layer (or of the network).
        y: ``(samples,)`` class labels, or ``(samples, D)`` regression targets in [0, 1].
    """

    x: NDArray[np.generic]
    y: NDArray[np.int64]


class Estimator(ABC):
    """Loss and gradient of one mini-batch for the parameters one method trains."""

    #: Number of parameters trained.
    n: int

    @abstractmethod
    def parameters(self) -> NDArray[np.float64]:
        """Current parameters ``(n,)`` as the device holds them."""

    @abstractmethod
    def write(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """Write parameters ``(n,)`` to the device; returns them as written (periodic ones
        wrapped by the bounds), so the caller need not read them back from the device."""

    #: Seed of the direction sampler (DD methods), for the record.
    direction_seed: int | None = None

    @abstractmethod
    def loss_and_gradient(self, theta: NDArray[np.float64], batch: NDArray[np.intp], draw: int) -> StepResult:
        """Loss and gradient for the training samples ``batch`` at parameters ``theta``.

        ``draw`` numbers the step within this training phase; DD methods draw their
        directions from it, so a resumed run draws what the uninterrupted one would.
        """

    #: The test split, as the trained parameters see it.
    test: Split

    def test_accuracy(self) -> tuple[float, int]:
        """``(accuracy of this method's own prediction on the test split, evaluations)``."""
        score, _, evaluations = self.validate(self.test)
        return score, evaluations

    @abstractmethod
    def validate(self, split: Split) -> tuple[float, float, int]:
        """One unperturbed pass over ``split`` at the current parameters: ``(score of this
        method's own prediction, mean loss, evaluations)``."""

    def batch_losses(self, settings: NDArray[np.float64], batch: NDArray[np.intp]) -> tuple[NDArray[np.float64], int]:
        """Loss of the training samples ``batch`` under each of ``settings`` ``(S, n)``, as ONE
        batch: ``((S,) losses, evaluations)``; a channel-wise layer's channel losses are averaged."""
        raise NotImplementedError(f"{type(self).__name__} evaluates no settings")


class LayerEstimator(Estimator):
    """Base of the layer-local methods: trains one layer, predicts with its prototypes.

    A channel-wise layer (``goodness.channels`` G > 1) has one loss per channel: channel g's
    parameters are trained on channel g's goodness alone.
    """

    def __init__(self, network: Network, layer: int, train: Split, test: Split,
                 goodness: TapGoodness, config: EstimatorSettings, objective: Objective) -> None:
        self.layer = network.layers[layer]
        self.index = layer
        self.n = self.layer.n_params
        self.train, self.test = train, test
        self.goodness, self.config = goodness, config
        self.objective = objective

    def channel_losses(self, taps: NDArray[np.floating], y: NDArray[np.generic]) -> tuple[NDArray[np.float64], float]:
        """Loss of every channel and the fraction right.

        Args:
            taps: ``(..., B, P)`` readings.
            y: ``(B,)`` labels (or ``(B, D)`` targets).

        Returns:
            ``((..., G) batch-mean losses, score of the layer's prediction)``.
        """
        per_channel = self.goodness.per_channel(taps)  # (..., B, G, C)
        losses = self.objective.local_loss(np.moveaxis(per_channel, -2, -3), y, self.config)
        return losses, self.objective.score(self.objective.local_predict(per_channel.mean(axis=-2)), y)

    def parameters(self) -> NDArray[np.float64]:
        return self.layer.get_parameters()

    def write(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        written = self.layer.bounds.apply(theta)
        self.layer.set_parameters(written)
        return written

    def validate(self, split: Split) -> tuple[float, float, int]:
        _, taps = self.layer.forward(split.x)
        losses, score = self.channel_losses(taps, split.y)
        return score, float(np.mean(losses)), split.x.shape[0]


class NetworkEstimator(Estimator):
    """Base of the global (BP) methods: trains every layer at once, predicts from the readout."""

    def __init__(
        self, network: Network, train: Split, test: Split, objective: Objective, config: EstimatorSettings
    ) -> None:
        self.network = network
        self.sizes = [layer.n_params for layer in network.layers]
        self.n = int(sum(self.sizes))
        self.train, self.test = train, test
        self.objective, self.config = objective, config

    def split(self, theta: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        """Per-layer parts of parameters ``(..., n)``."""
        return np.split(theta, np.cumsum(self.sizes)[:-1], axis=-1)

    def parameters(self) -> NDArray[np.float64]:
        return np.concatenate([layer.get_parameters() for layer in self.network.layers])

    def write(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        written = [layer.bounds.apply(part) for layer, part in zip(self.network.layers, self.split(theta))]
        for layer, part in zip(self.network.layers, written):
            layer.set_parameters(part)
        return np.concatenate(written)

    def validate(self, split: Split) -> tuple[float, float, int]:
        taps = self.network.all_taps(split.x)[-1]
        score = self.objective.score(self.objective.readout_predict(taps, self.config), split.y)
        loss = float(self.objective.readout_loss(taps, split.y, self.config))
        return score, loss, split.x.shape[0] * len(self.network)


class DirectionalDerivatives:
    """The DD step shared by ``ff-dd`` and ``bp-dd``: 2K perturbed settings (K + 1 with forward
    differences), one batch, eq. 12-14.

    Subclasses say how a batch of settings is scored (:meth:`score`).
    """

    config: EstimatorSettings
    n: int

    def _sampler(self, seed: int, groups: int = 1) -> None:
        self.groups = groups
        self.sampler = DirectionSampler(self.n, self.config.directions, seed, groups, self.config.orthogonal)
        self.direction_seed = self.sampler.seed

    def batch_losses(self, settings: NDArray[np.float64], batch: NDArray[np.intp]) -> tuple[NDArray[np.float64], int]:
        loss, _, _, evaluations = self.score(settings, batch)
        loss = np.asarray(loss, dtype=np.float64)
        return (loss.mean(axis=1) if loss.ndim == 2 else loss), evaluations

    def score(
        self, settings: NDArray[np.float64], batch: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], float, NDArray[np.float64], int]:
        """``(loss per setting (2K,) or per setting and channel (2K, G), fraction right,
        readings, device evaluations)``."""
        raise NotImplementedError

    def loss_and_gradient(self, theta: NDArray[np.float64], batch: NDArray[np.intp], draw: int) -> StepResult:
        c = self.config
        directions = self.sampler.draw(draw)
        settings = perturbed_settings(theta, directions, c.eps, c.difference)
        loss, right, readings, evaluations = self.score(settings, batch)
        return StepResult(float(loss.mean()), directional_gradient(loss, directions, c.eps, c.difference),
                          evaluations, right, readings, draw,
                          float(np.mean(centre_loss(loss, c.directions, c.difference))))


class LocalDD(DirectionalDerivatives, LayerEstimator):
    """FFzero: directional derivatives of one layer's margin loss, 2K settings in one batch."""

    def __init__(self, network: Network, layer: int, train: Split, test: Split,
                 goodness: TapGoodness, config: EstimatorSettings, objective: Objective, seed: int) -> None:
        LayerEstimator.__init__(self, network, layer, train, test, goodness, config, objective)
        self._sampler(seed, goodness.channels)

    def score(self, settings, batch):
        taps = self.layer.evaluate(self.train.x[batch], settings)  # (2K, B, P)
        losses, right = self.channel_losses(taps, self.train.y[batch])  # (2K, G)
        return losses, right, taps, settings.shape[0] * batch.size


class GlobalDD(DirectionalDerivatives, NetworkEstimator):
    """BP+DD: directional derivatives of the readout cross-entropy over every parameter at once."""

    def __init__(self, network: Network, train: Split, test: Split, objective: Objective,
                 config: EstimatorSettings, seed: int) -> None:
        NetworkEstimator.__init__(self, network, train, test, objective, config)
        self._sampler(seed)

    def score(self, settings, batch):
        taps = self.network.propagate_settings(self.train.x[batch], self.split(settings))
        y = self.train.y[batch]
        loss = self.objective.readout_loss(taps, y, self.config)
        right = self.objective.score(self.objective.readout_predict(taps, self.config), y)
        return loss, right, taps, settings.shape[0] * batch.size * len(self.network)

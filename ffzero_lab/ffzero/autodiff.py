"""The automatic-differentiation reference methods (``ff-ad``, ``bp-ad``), on TensorFlow.

Exact gradients with ``tf.GradientTape`` through the devices' differentiable models (their
``differentiable()`` twins) and the same losses as the DD methods. These are upper bounds
for comparison: a physical chip has no gradient tape. TensorFlow is imported only here, and
only when an AD method runs (neurophox already brings it; no Keras models are used).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.network import Network
from ffzero_lab.ffzero.goodness import TapGoodness
from ffzero_lab.ffzero.methods import (
    LayerEstimator,
    NetworkEstimator,
    Split,
    StepResult,
)
from ffzero_lab.ffzero.objectives import Objective
from ffzero_lab.ffzero.settings import EstimatorSettings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402


def _twin(obj: Any, what: str) -> Any:
    model = obj.differentiable() if hasattr(obj, "differentiable") else None
    if model is None:
        raise ValueError(f"{what} has no differentiable model: AD methods need a simulated or digital device")
    return model


def tf_goodness(taps: tf.Tensor, prototypes: tf.Tensor, centre: bool) -> tf.Tensor:
    """Cosine goodness ``(..., B, P) x (C, P) -> (..., B, C)``, as
    :func:`ffzero_lab.ffzero.goodness.cosine_goodness` computes it."""
    z = taps - tf.reduce_mean(taps, axis=-1, keepdims=True) if centre else taps
    norm = tf.maximum(tf.norm(z, axis=-1, keepdims=True), 1e-30)
    return tf.einsum("...p,cp->...c", z, prototypes) / norm


def tf_channel_goodness(taps: tf.Tensor, goodness: TapGoodness) -> tf.Tensor:
    """Goodness of every channel ``(B, P) -> (G, B, C)`` (see :class:`ffzero_lab.ffzero.goodness.TapGoodness`)."""
    protos = tf.constant(goodness.prototypes, dtype=tf.float64)
    if goodness.projection is None:
        return tf_goodness(taps, protos, goodness.centred)[None]
    g, _, ports = goodness.projection.shape
    z = tf.reshape(taps, (-1, g, ports))
    if goodness.centred:
        z = z - tf.reduce_mean(z, axis=-1, keepdims=True)
    r = tf.einsum("bgp,gdp->gbd", z, tf.constant(goodness.projection, dtype=tf.float64))
    return tf_goodness(r, protos, False)


def tf_margin_loss(goodness: tf.Tensor, labels: tf.Tensor, config: EstimatorSettings) -> tf.Tensor:
    """The margin loss of :func:`ffzero_lab.ffzero.losses.margin_loss`, mean over the batch (and any leading axes)."""
    n_classes = goodness.shape[-1]
    onehot = tf.one_hot(labels, n_classes, dtype=goodness.dtype)
    g_true = tf.reduce_sum(goodness * onehot, axis=-1, keepdims=True)
    if config.negatives == "mean":
        hinge = tf.nn.relu(config.margin - g_true + config.negative_weight * goodness) * (1 - onehot)
        per_sample = tf.reduce_sum(hinge, axis=-1) / (n_classes - 1)
    else:
        worst = tf.reduce_max(goodness - 1e9 * onehot, axis=-1, keepdims=True)
        per_sample = tf.nn.relu(config.margin - g_true + config.negative_weight * worst)[..., 0]
    return tf.reduce_mean(per_sample)


def tf_local_loss(goodness: tf.Tensor, y: tf.Tensor, objective: Objective, config: EstimatorSettings) -> tf.Tensor:
    """The objective's layer-local loss (margin loss, or the regression loss), batch mean."""
    if objective.metric == "accuracy":
        return tf_margin_loss(goodness, y, config)
    return tf.reduce_mean(tf.reduce_sum((goodness - (2.0 * y - 1.0)) ** 2, axis=-1))


def tf_readout_loss(taps: tf.Tensor, y: tf.Tensor, objective: Objective, config: EstimatorSettings) -> tf.Tensor:
    """The BP loss of :meth:`ffzero_lab.ffzero.objectives.Objective.readout_loss`, batch mean."""
    head = taps[:, : objective.width]
    if config.readout == "power-fraction":
        head = head / tf.maximum(tf.reduce_sum(taps, axis=-1, keepdims=True), 1e-30)
    if objective.metric == "accuracy":
        logits = config.logit_scale * head
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    return tf.reduce_mean(tf.reduce_sum((head - y) ** 2, axis=-1))


def _run(step: Any, x: NDArray[np.generic], y: NDArray[np.generic], theta: NDArray[np.float64]):
    """Call a compiled step; ``(loss, gradient (n,) float64, taps)`` as numpy."""
    loss, grad, taps = step(tf.constant(x), tf.constant(y), tf.constant(theta))
    return float(loss), np.asarray(grad, dtype=np.float64), taps.numpy()


class LocalAD(LayerEstimator):
    """FF+AD: exact gradient of one layer's margin loss through its differentiable model.

    A channel-wise layer's G channel losses are summed for the tape: channel g's parameters
    reach only channel g's loss, so each gets its own loss's gradient (the reported loss is
    their mean, as for ``ff-dd``).
    """

    def __init__(self, network: Network, layer: int, train: Split, test: Split,
                 goodness: TapGoodness, config: EstimatorSettings, objective: Objective) -> None:
        super().__init__(network, layer, train, test, goodness, config, objective)
        model = _twin(self.layer, f"layer {layer}")
        channels = float(goodness.channels)

        @tf.function(reduce_retracing=True)
        def step(x, y, theta):
            with tf.GradientTape() as tape:
                tape.watch(theta)
                _, taps = model(x, theta)
                loss = tf_local_loss(tf_channel_goodness(tf.cast(taps, tf.float64), goodness), y, objective, config)
                total = channels * loss
            return loss, tape.gradient(total, theta), taps

        self._step = step

    def loss_and_gradient(self, theta, batch, draw):
        y = self.train.y[batch]
        loss, grad, taps = _run(self._step, self.train.x[batch], y, theta)
        right = self.objective.score(self.objective.local_predict(self.goodness(taps)), y)
        return StepResult(loss, grad, int(batch.size), right, taps)


class GlobalAD(NetworkEstimator):
    """BP+AD: exact gradient of the readout cross-entropy through the whole network."""

    def __init__(
        self, network: Network, train: Split, test: Split, objective: Objective, config: EstimatorSettings
    ) -> None:
        super().__init__(network, train, test, objective, config)
        models = [_twin(layer, f"layer {i}") for i, layer in enumerate(network.layers)]
        stages = [None if s is None else _twin(s, f"the stage after layer {i}") for i, s in enumerate(network.stages)]
        bounds = np.cumsum([0, *self.sizes])

        @tf.function(reduce_retracing=True)
        def step(x, y, theta):
            with tf.GradientTape() as tape:
                tape.watch(theta)
                signal, taps = x, None
                for i, model in enumerate(models):
                    signal, taps = model(signal, theta[bounds[i] : bounds[i + 1]])
                    if i < len(stages) and stages[i] is not None:
                        signal = stages[i](signal)
                loss = tf_readout_loss(tf.cast(taps, tf.float64), y, objective, config)
            return loss, tape.gradient(loss, theta), taps

        self._step = step

    def loss_and_gradient(self, theta, batch, draw):
        y = self.train.y[batch]
        loss, grad, taps = _run(self._step, self.train.x[batch], y, theta)
        right = self.objective.score(self.objective.readout_predict(taps, self.config), y)
        return StepResult(loss, grad, int(batch.size) * len(self.network), right, taps)

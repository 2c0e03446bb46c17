"""Plain digital layers: a dense layer in numpy, meeting the same contract as a chip.

Useful to check a protocol's training settings without optics, and as the digital
counterpart in comparisons. Parameters are the weights ``W`` ``(out, in)`` followed by the
biases ``b`` ``(out,)``, unbounded; the tap is ``z = x W^T + b``.

With ``network.conv`` the device is a CNN: conv layers (:mod:`drivers.convolution`, trained
channel-wise) then ``network.layers`` dense layers, the activation after every layer but the
last.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.core.contract import HeldParameters, ParameterBounds, PhysicalLayer
from ffzero_lab.core.network import Network

from .convolution import Conv2dLayer, ConvGeometry


class DenseSettings(BaseModel):
    """``device.settings`` for the digital device."""

    model_config = ConfigDict(extra="forbid")

    bias: bool = Field(True, description="Train a bias per output.")
    init_scale: float = Field(1.0, gt=0, description="Weights ~ N(0, init_scale^2 / fan_in).")


class DigitalActivation(BaseModel):
    """``network.activation`` for the digital device."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["relu", "tanh", "none"] = "relu"


class DenseLayer(HeldParameters, PhysicalLayer):
    """``z = x W^T + b`` with ``in_features`` inputs and ``out_features`` taps."""

    def __init__(
        self, in_features: int, out_features: int, settings: DenseSettings, seed: int | np.random.SeedSequence
    ) -> None:
        self.in_features = in_features
        self.ports = self.out_features = out_features
        self.has_bias = settings.bias
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((out_features, in_features)) * settings.init_scale / np.sqrt(in_features)
        b = np.zeros(out_features if settings.bias else 0)
        self._bounds = ParameterBounds.unbounded(w.size + b.size)
        self._theta = np.concatenate([w.ravel(), b])

    def _split(self, settings: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
        n_w = self.in_features * self.out_features
        w = settings[:, :n_w].reshape(-1, self.out_features, self.in_features)
        b = settings[:, n_w:] if self.has_bias else np.zeros((settings.shape[0], self.out_features))
        return w, b

    def propagate(
        self, inputs: NDArray[np.generic], settings: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        w, b = self._split(self._bounds.apply(np.atleast_2d(settings)))
        x = np.asarray(inputs, dtype=np.float64)
        if x.ndim == 2:
            z = np.einsum("bi,soi->sbo", x, w, optimize=True) + b[:, None, :]
        else:
            z = np.einsum("sbi,soi->sbo", x, w, optimize=True) + b[:, None, :]
        return z, z

    def differentiable(self):
        """TensorFlow twin: ``z = x W^T + b`` from the flat parameter vector."""
        import tensorflow as tf  # lazy: only the AD reference methods need it

        n_w = self.in_features * self.out_features
        shape = (self.out_features, self.in_features)
        has_bias = self.has_bias

        def model(inputs, params):
            w = tf.reshape(params[:n_w], shape)
            z = tf.matmul(tf.cast(inputs, params.dtype), w, transpose_b=True)
            if has_bias:
                z = z + params[n_w:]
            return z, z

        return model


class Relu:
    """``max(z, 0)``, element-wise."""

    def __call__(self, z: NDArray[np.floating]) -> NDArray[np.float64]:
        return np.maximum(z, 0.0)

    def differentiable(self):
        import tensorflow as tf

        return tf.nn.relu


class Tanh:
    """``tanh(z)``, element-wise."""

    def __call__(self, z: NDArray[np.floating]) -> NDArray[np.float64]:
        return np.tanh(z)

    def differentiable(self):
        import tensorflow as tf

        return tf.tanh


def _activation(kind: str) -> Relu | Tanh | None:
    return {"relu": Relu(), "tanh": Tanh()}.get(kind)


class DigitalDevice:
    """Driver entry point ``digital``: an MLP of ``network.layers`` dense layers of ``network.width``,
    after ``network.conv.layers`` conv layers when ``network.conv`` is given (a CNN)."""

    settings_model = DenseSettings
    activation_model = DigitalActivation

    def build(self, network: Any, settings: DenseSettings, activation: DigitalActivation, seed: int, in_features: int,
              image_shape: tuple[int, int] | None = None) -> Network:
        """Build the network; the first layer takes ``in_features`` inputs, images of ``image_shape``
        (height, width) for a CNN.

        Dense layer i draws from child i of ``SeedSequence(seed)``; a CNN's conv layers come
        first in that count.

        Raises:
            ValueError: a CNN on data that is not an image of ``in_features`` pixels.
        """
        conv = network.conv
        n_conv = 0 if conv is None else conv.layers
        seqs = np.random.SeedSequence(seed).spawn(n_conv + network.layers)
        layers: list[PhysicalLayer] = []
        if conv is not None:
            if image_shape is None or image_shape[0] * image_shape[1] != in_features or min(image_shape) < 2:
                raise ValueError(f"conv layers need images; the data's {in_features} features are not (height, width) "
                                 f"= {image_shape} pixels")
            channels, (height, width) = 1, image_shape
            for i in range(n_conv):
                geo = ConvGeometry(channels, height, width, conv.channels, conv.kernel, conv.stride)
                layers.append(Conv2dLayer(geo, settings.init_scale, seqs[i]))
                channels, height, width = conv.channels, geo.out_height, geo.out_width
            in_features = layers[-1].out_features
        widths = [in_features] + [network.width] * network.layers
        layers += [DenseLayer(widths[i], widths[i + 1], settings, seqs[n_conv + i]) for i in range(network.layers)]
        stage = _activation(activation.kind)
        return Network(layers, [stage] * (len(layers) - 1))


DEVICE = DigitalDevice()

"""A digital 2-D convolution layer in numpy, meeting the layer contract channel-wise.

Signals are images flattened channel-major: ``(..., C_in * H * W)`` holds ``C_in`` maps of
``H x W``. The layer has ``C_out`` output channels of ``k x k`` kernels, moves by ``stride``
and pads every side by ``k // 2`` with zeros, so a map of ``H x W`` becomes
``H' x W'`` with ``H' = (H + 2 (k // 2) - k) // stride + 1``.

Parameters are laid out channel by channel: output channel c owns the contiguous block
``[kernel_c (C_in, k, k) flattened, bias_c]`` of ``C_in k^2 + 1`` values, and its ``H' W'``
taps (the map ``z_c``, also contiguous) depend on that block alone. That is the contract's
``channels`` structure: FF methods train every output channel on its own goodness.

The convolution is a matrix product with the image's patches (im2col): a batch of S kernel
settings costs one ``(B P, C_in k^2) x (C_in k^2, S C_out)`` product, computed in chunks of
samples so memory stays bounded for any data set size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.contract import HeldParameters, ParameterBounds, PhysicalLayer

#: Patch elements (floats) per chunk: bounds the im2col buffer to about 128 MB.
PATCH_BUDGET = 16_000_000


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of one convolution.

    Attributes:
        in_channels: C_in.
        height, width: input map size, pixels.
        out_channels: C_out.
        kernel: k, kernel height and width, pixels.
        stride: step of the kernel, pixels.
    """

    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: int
    stride: int

    @property
    def pad(self) -> int:
        """Zero padding on every side, pixels."""
        return self.kernel // 2

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def positions(self) -> int:
        """P = H' W', kernel positions (taps per output channel)."""
        return self.out_height * self.out_width

    @property
    def fan_in(self) -> int:
        """C_in k^2, inputs of one output value."""
        return self.in_channels * self.kernel * self.kernel


def patches(images: NDArray[np.floating], geo: ConvGeometry) -> NDArray[np.float64]:
    """im2col: every kernel position's input patch.

    Args:
        images: ``(..., C_in * H * W)`` flattened channel-major.
        geo: the convolution's shapes.

    Returns:
        ``(..., P, C_in k^2)``, the patch of position ``(i, j)`` at row ``i W' + j``, its
        entries ordered as a kernel ``(C_in, k, k)`` flattened.
    """
    lead = images.shape[:-1]
    x = np.asarray(images, dtype=np.float64).reshape(*lead, geo.in_channels, geo.height, geo.width)
    p = geo.pad
    x = np.pad(x, [(0, 0)] * (len(lead) + 1) + [(p, p), (p, p)])
    windows = np.lib.stride_tricks.sliding_window_view(x, (geo.kernel, geo.kernel), axis=(-2, -1))
    windows = windows[..., :: geo.stride, :: geo.stride, :, :][..., : geo.out_height, : geo.out_width, :, :]
    # (..., C_in, H', W', k, k) -> (..., H', W', C_in, k, k)
    n = len(lead)
    order = (*range(n), n + 1, n + 2, n, n + 3, n + 4)
    return windows.transpose(order).reshape(*lead, geo.positions, geo.fan_in)


class Conv2dLayer(HeldParameters, PhysicalLayer):
    """A 2-D convolution with ``C_out`` channel-wise trainable output channels.

    Args:
        geo: the shapes.
        init_scale: kernels ~ N(0, init_scale^2 / (C_in k^2)); biases start at 0.
        seed: the layer's random stream.
    """

    def __init__(self, geo: ConvGeometry, init_scale: float, seed: int | np.random.SeedSequence) -> None:
        self.geo = geo
        self.in_features = geo.in_channels * geo.height * geo.width
        self.ports = self.out_features = geo.out_channels * geo.positions
        self.channels = geo.out_channels
        rng = np.random.default_rng(seed)
        kernels = rng.standard_normal((geo.out_channels, geo.fan_in)) * init_scale / np.sqrt(geo.fan_in)
        self._theta = np.concatenate([kernels, np.zeros((geo.out_channels, 1))], axis=1).ravel()
        self._bounds = ParameterBounds.unbounded(self._theta.size)

    def _kernels(self, settings: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(S, n)`` -> kernels ``(S, C_out, C_in k^2)`` and biases ``(S, C_out)``."""
        blocks = settings.reshape(settings.shape[0], self.geo.out_channels, self.geo.fan_in + 1)
        return blocks[..., :-1], blocks[..., -1]

    def propagate(
        self, inputs: NDArray[np.generic], settings: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Convolve a batch under a batch of kernel settings.

        Args:
            inputs: ``(B, C_in H W)`` shared by every setting, or ``(S, B, C_in H W)``.
            settings: ``(S, n)``, n = C_out (C_in k^2 + 1).

        Returns:
            ``(z, z)``, both ``(S, B, C_out H' W')``: the maps, channel-major.
        """
        settings = self._bounds.apply(np.atleast_2d(settings))
        kernels, biases = self._kernels(settings)
        x = np.asarray(inputs, dtype=np.float64)
        geo = self.geo
        s, b = settings.shape[0], x.shape[-2]
        out = np.empty((s, b, geo.out_channels, geo.positions))
        shared = x.ndim == 2
        per_sample = geo.positions * geo.fan_in * (1 if shared else s)
        chunk = max(1, PATCH_BUDGET // per_sample)
        for start in range(0, b, chunk):
            part = slice(start, start + chunk)
            if shared:
                cols = patches(x[part], geo)  # (b', P, F)
                z = cols.reshape(-1, geo.fan_in) @ kernels.reshape(-1, geo.fan_in).T  # (b' P, S C_out)
                z = z.reshape(cols.shape[0], geo.positions, s, geo.out_channels).transpose(2, 0, 3, 1)
            else:
                cols = patches(x[:, part], geo)  # (S, b', P, F)
                z = np.matmul(cols, kernels.transpose(0, 2, 1)[:, None])  # (S, b', P, C_out)
                z = z.transpose(0, 1, 3, 2)
            out[:, part] = z + biases[:, None, :, None]
        z = out.reshape(s, b, self.ports)
        return z, z

    def differentiable(self):
        """TensorFlow twin: ``tf.nn.conv2d`` with the same padding, stride and layout."""
        import tensorflow as tf  # lazy: only the AD reference methods need it

        geo = self.geo
        p = geo.pad

        def model(inputs, params):
            blocks = tf.reshape(params, (geo.out_channels, geo.fan_in + 1))
            kernels = tf.reshape(blocks[:, :-1], (geo.out_channels, geo.in_channels, geo.kernel, geo.kernel))
            x = tf.reshape(tf.cast(inputs, params.dtype), (-1, geo.in_channels, geo.height, geo.width))
            z = tf.nn.conv2d(tf.transpose(x, (0, 2, 3, 1)), tf.transpose(kernels, (2, 3, 1, 0)),
                             strides=geo.stride, padding=[[0, 0], [p, p], [p, p], [0, 0]])
            z = (
                tf.transpose(z[:, : geo.out_height, : geo.out_width, :], (0, 3, 1, 2))
                + blocks[:, -1][None, :, None, None]
            )
            z = tf.reshape(z, (-1, geo.out_channels * geo.positions))
            return z, z

        return model

"""TensorFlow twin of the simulated mesh, for the automatic-differentiation reference methods.

Same conventions as :mod:`ffzero_lab.photonics.clements` (neurophox's, ``hadamard=False``): row
fields, ``x @ U``, theta/phi per MZI, gamma at the input, fixed beam-splitter errors and
insertion loss. Heater and detector non-idealities are not modelled: the AD methods are an
upper bound, not a physical procedure. Imported only when an AD method runs.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ffzero_lab.photonics.clements import MeshGeometry


def mesh_model(geometry: MeshGeometry, dtype: tf.DType = tf.complex128):
    """A function ``(inputs (B, N), params (n,)) -> (fields (B, N), intensities (B, N))``.

    ``params`` is the mesh's flat parameter vector: theta of the tunable MZIs (row-major over
    (column, slot)), then phi of the same MZIs, then the N input phases gamma; radians.
    """
    n, half, layers = geometry.units, geometry.units // 2, geometry.num_layers
    real = tf.float64 if dtype == tf.complex128 else tf.float32
    where = np.argwhere(geometry.mask > 0)  # (m, 2) (column, slot)
    m = where.shape[0]
    e = geometry.bs_error
    scale = 0.5 if geometry.transmission is None else 0.5 * geometry.transmission
    sp, sn = np.sqrt(1.0 + e), np.sqrt(1.0 - e)
    epp, epn, enp, enn = (tf.constant(scale * v, dtype=real) for v in (sp * sp, sp * sn, sn * sp, sn * sn))
    bar = tf.constant(np.pi * (1 - geometry.mask), dtype=real)  # unused slots held at theta = phi = pi
    indices = tf.constant(where, dtype=tf.int64)
    perms = [tf.constant(p, dtype=tf.int32) for p in geometry.perm_idx]
    sm = geometry.basis == "sm"

    def expi(x: tf.Tensor) -> tf.Tensor:
        return tf.complex(tf.cos(x), tf.sin(x))

    def cplx(x: tf.Tensor) -> tf.Tensor:
        return tf.cast(x, dtype)

    def model(inputs, params):
        params = tf.cast(params, real)
        theta = tf.scatter_nd(indices, params[:m], (layers, half)) + bar
        phi = tf.scatter_nd(indices, params[m : 2 * m], (layers, half)) + bar
        gamma = params[2 * m :]
        a = expi(theta) if sm else expi(theta / 2)
        b = tf.ones_like(a) if sm else tf.math.conj(a)
        ephi = expi(phi)
        t00 = (cplx(epp) * a - cplx(enn) * b) * ephi
        t01 = 1j * (cplx(epn) * a + cplx(enp) * b)
        t10 = 1j * (cplx(enp) * a + cplx(epn) * b) * ephi
        t11 = cplx(epp) * b - cplx(enn) * a
        x = tf.cast(inputs, dtype) * expi(gamma)[None, :]
        x = tf.gather(x, perms[0], axis=-1)
        for layer in range(layers):
            pairs = tf.reshape(x[:, : 2 * half], (-1, half, 2))
            p0, p1 = pairs[..., 0], pairs[..., 1]
            out0 = p0 * t00[layer] + p1 * t10[layer]
            out1 = p0 * t01[layer] + p1 * t11[layer]
            y = tf.reshape(tf.stack([out0, out1], axis=-1), (-1, 2 * half))
            if n % 2:
                y = tf.concat([y, x[:, -1:]], axis=-1)
            x = tf.gather(y, perms[layer + 1], axis=-1)
        return x, tf.math.real(x) ** 2 + tf.math.imag(x) ** 2

    return model


def electro_optic(alpha: float, gain: float, bias_phase: float):
    """TensorFlow version of :class:`~ffzero_lab.photonics.activation.ElectroOpticActivation`."""

    def activation(z):
        power = tf.math.real(z) ** 2 + tf.math.imag(z) ** 2
        phase = gain * power + bias_phase
        amp = tf.cast(np.sqrt(1.0 - alpha) * tf.cos(0.5 * phase), z.dtype)
        return 1j * amp * tf.exp(tf.complex(tf.zeros_like(phase), -0.5 * phase)) * z

    return activation

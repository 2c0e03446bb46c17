"""The MZI block formula, and the per-setting loop that :mod:`.kernel` compiles with numba.

Plain Python, no numba import: :func:`mzi_transfer` is the one formula of an MZI's 2x2 block, used
on numpy arrays by :func:`.clements.mzi_blocks` (the reference) and on scalars by
:func:`propagate_packed`, which :mod:`.kernel` compiles (with ``cache=True``: keeping the formula
and the loop in this one file means numba's on-disk cache, which watches only this file, is
refreshed whenever either changes).

The block acting as ``[x0, x1] @ T`` on the fields of an MZI's upper and lower modes, with the
splitters' amplitudes ``e++, e+-, e-+, e--`` (see :func:`.clements.splitter_amplitudes`), the
internal phase factors ``a`` (upper arm) and ``b`` (lower arm) and ``ephi = e^{i phi}``::

    T = [[(e++ a - e-- b) p0,  i (e+- a + e-+ b) p1],
         [i (e-+ a + e+- b) q0,  e++ b - e-- a     ]]

with ``p0 = q0 = ephi, p1 = 1`` when phi follows the MZI (``external='output'``) and
``p0 = p1 = ephi, q0 = 1`` when it precedes it (``'input'``).
"""

from __future__ import annotations

import math

import numpy as np

#: Phases beyond this magnitude (rad) are reduced by ``math.sin``/``math.cos`` instead of the
#: vectorised polynomial (whose three-part reduction by pi/2 is exact to ~1e-16 below it).
POLY_LIMIT = 1.0e5

#: The compiled :func:`sincos` and :func:`mzi_transfer` that the compiled loop calls (inlined);
#: set by :mod:`.kernel` before it compiles :func:`propagate_packed`.
_sincos_jit = None
_transfer_jit = None


def mzi_transfer(a, b, ephi, epp, epn, enp, enn, external_input):  # noqa: ANN001, ANN201
    """The one formula of an MZI's 2x2 block ``T`` (acting as ``[x0, x1] @ T``).

    Plain arithmetic on complex ``a`` (the upper arm's internal phase factor), ``b`` (the lower
    arm's: 1 in basis ``sm``, ``conj(a)`` in ``bloch``), ``ephi = e^{i phi}`` and the splitter
    amplitudes (real): numpy arrays (:func:`.clements.mzi_blocks`) or scalars
    (:func:`propagate_packed`, compiled by :mod:`.kernel`).

    Returns:
        ``(T00, T01, T10, T11)``.
    """
    t00 = (epp * a - enn * b) * ephi
    t01 = 1j * (epn * a + enp * b)
    t10 = 1j * (enp * a + epn * b)
    t11 = epp * b - enn * a
    if external_input:  # phi on the upper input: the first row of T
        return t00, t01 * ephi, t10, t11
    return t00, t01, t10 * ephi, t11  # phi on the upper output: the first column of T


# pi/2 in three parts (Cody-Waite): k * _P1 is exact for |k| < 2^20.
_TWO_OVER_PI = 0.6366197723675814
_P1 = 1.5707963267341256
_P2 = 6.077100506506192e-11
_P3 = 2.0222662487959506e-21


def sincos(x: float) -> tuple[float, float]:
    """``(sin x, cos x)`` to ~1 ulp for ``|x| < 1e5`` rad: x reduced by pi/2 (three-part constant),
    Taylor polynomials to degree 17/18 on ``|r| <= pi/4`` (truncation < 1e-19), the quadrant
    chosen by selects. Straight-line arithmetic, so a loop of it vectorises."""
    k = math.floor(x * _TWO_OVER_PI + 0.5)
    r = ((x - k * _P1) - k * _P2) - k * _P3
    r2 = r * r
    s = r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880 + r2 * (
        -1.0 / 39916800 + r2 * (1.0 / 6227020800 + r2 * (-1.0 / 1307674368000 + r2 * (
            1.0 / 355687428096000)))))))))
    c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (-1.0 / 3628800 + r2 * (
        1.0 / 479001600 + r2 * (-1.0 / 87178291200 + r2 * (1.0 / 20922789888000 + r2 * (
            -1.0 / 6402373705728000)))))))))
    q = k - 4.0 * math.floor(k * 0.25)  # the quadrant, 0..3 (as a float: selects vectorise)
    odd = (q == 1.0) | (q == 3.0)
    sin_r, cos_r = (c, s) if odd else (s, c)
    sin = -sin_r if q >= 2.0 else sin_r
    cos = -cos_r if (q == 1.0) | (q == 2.0) else cos_r
    return sin, cos


def propagate_packed(inputs, shared, settings, theta_index, phi_index, gamma_index, pairs, final, amplitudes, bloch,
                     external_input, chunk, out):  # pragma: no cover - run compiled
    """Output fields ``out (S, B, N)`` of ``inputs (1 or S, B, N)`` under packed ``settings (S, n)`` (rad).

    Per setting: every slot's phases (``theta_index``, ``phi_index`` ``(L, N//2)`` into the setting,
    -1: an empty slot, held at pi), their sines and cosines (:func:`sincos`), every block
    (:func:`mzi_transfer` with the splitter ``amplitudes (4, L, N//2)``), then the field, as ``(N, chunk)``
    real and imaginary planes, ``chunk`` samples of the batch at a time, through every column in place:
    rows ``pairs[l, k]`` ``(L, N//2, 2)``, gamma (``gamma_index (N,)``) on the way in, output mode p read
    from row ``final[p]``. Only compiled (by :mod:`.kernel`, ``nogil``): it calls the compiled
    ``_sincos_jit`` and ``_transfer_jit`` that :mod:`.kernel` sets first.
    """
    n_set, batch, modes = out.shape
    layers, half = theta_index.shape
    slots = layers * half
    real = out.real.dtype
    chunk = min(batch, chunk)
    re = np.empty((modes, chunk), dtype=real)
    im = np.empty((modes, chunk), dtype=real)
    gamma_cos, gamma_sin = np.empty(modes), np.empty(modes)
    cols = np.empty((8, layers, half), dtype=real)  # every block: T00, T01, T10, T11 (re, im)
    phases = np.empty((2, slots))  # theta (or theta/2 in basis bloch) and phi of every slot, rad
    sines = np.empty((2, slots))
    cosines = np.empty((2, slots))
    flat_theta, flat_phi = theta_index.ravel(), phi_index.ravel()
    amp = amplitudes.reshape(4, slots)
    flat_cols = cols.reshape(8, slots)
    for s in range(n_set):
        x = inputs[0 if shared else s]
        p = settings[s]
        for j in range(slots):  # empty slots: theta = phi = pi
            ti, pi_ = flat_theta[j], flat_phi[j]
            th = p[ti] if ti >= 0 else np.pi
            phases[0, j] = 0.5 * th if bloch else th
            phases[1, j] = p[pi_] if pi_ >= 0 else np.pi
        big = False
        for j in range(slots):
            big |= (abs(phases[0, j]) >= POLY_LIMIT) | (abs(phases[1, j]) >= POLY_LIMIT)
        for i in range(2):
            if big:
                for j in range(slots):
                    sines[i, j], cosines[i, j] = math.sin(phases[i, j]), math.cos(phases[i, j])
            else:
                for j in range(slots):  # vectorised
                    sines[i, j], cosines[i, j] = _sincos_jit(phases[i, j])
        for j in range(slots):  # every block, vectorised
            a = complex(cosines[0, j], sines[0, j])
            lower = a.conjugate() if bloch else complex(1.0, 0.0)
            t00, t01, t10, t11 = _transfer_jit(a, lower, complex(cosines[1, j], sines[1, j]), amp[0, j], amp[1, j],
                                          amp[2, j], amp[3, j], external_input)
            flat_cols[0, j], flat_cols[1, j] = t00.real, t00.imag
            flat_cols[2, j], flat_cols[3, j] = t01.real, t01.imag
            flat_cols[4, j], flat_cols[5, j] = t10.real, t10.imag
            flat_cols[6, j], flat_cols[7, j] = t11.real, t11.imag
        for m in range(modes):
            g = p[gamma_index[m]]
            gamma_cos[m], gamma_sin[m] = math.cos(g), math.sin(g)
        o = out[s]
        for start in range(0, batch, chunk):  # a chunk of the batch through every column, in cache
            width = min(chunk, batch - start)
            for m in range(modes):  # the input phases, then the field as (N, chunk) planes
                cg, sg = gamma_cos[m], gamma_sin[m]
                for b in range(width):
                    v = x[start + b, m]
                    re[m, b] = v.real * cg - v.imag * sg
                    im[m, b] = v.real * sg + v.imag * cg
            for layer in range(layers):
                for k in range(half):  # [x0, x1] <- [x0, x1] @ T, in place, over the chunk
                    r0, r1 = pairs[layer, k, 0], pairs[layer, k, 1]
                    a00r, a00i, a01r, a01i = cols[0, layer, k], cols[1, layer, k], cols[2, layer, k], cols[3, layer, k]
                    a10r, a10i, a11r, a11i = cols[4, layer, k], cols[5, layer, k], cols[6, layer, k], cols[7, layer, k]
                    x0r, x0i, x1r, x1i = re[r0], im[r0], re[r1], im[r1]
                    for b in range(width):
                        u0r, u0i, u1r, u1i = x0r[b], x0i[b], x1r[b], x1i[b]
                        x0r[b] = (u0r * a00r + u1r * a10r) - (u0i * a00i + u1i * a10i)
                        x0i[b] = (u0r * a00i + u1r * a10i) + (u0i * a00r + u1i * a10r)
                        x1r[b] = (u0r * a01r + u1r * a11r) - (u0i * a01i + u1i * a11i)
                        x1i[b] = (u0r * a01i + u1r * a11i) + (u0i * a01r + u1i * a11r)
            for b in range(width):
                for m in range(modes):
                    o[start + b, m] = complex(re[final[m], b], im[final[m], b])


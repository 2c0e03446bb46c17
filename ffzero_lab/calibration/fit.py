"""Fitting phase laws ``phi = phi0 + k V^2`` to heater sweeps.

A detector's power is exactly a sinusoid of any one phase shifter's phase when everything else is
held (the field at a port is affine in ``e^{i phi}``): ``P = A + Re(c e^{i phi})``. Sweeping a heater
over voltages evenly spaced in ``u = V^2`` therefore gives sinusoids in ``u`` of frequency ``k``:

* :func:`fit_sinusoids` finds ``k`` shared by every series of a sweep (every port, every input
  pattern): a scan of ``k`` with linear least squares for the rest at each value, then robust
  (reweighted) refinements.
* An input modulator passes ``|sin(psi / 2)|^2`` of its light, which the mesh only redistributes:
  the total detected power is ``a + b sin^2(psi / 2)`` with ``b > 0``, so its ``phi0`` follows from
  the phase of the sinusoid (:func:`modulator_phi0`).
* A mesh phase's sinusoid is shifted by what the rest of the mesh does, so its ``phi0`` needs the
  whole mesh: the sweeps of the input phases gamma give the mesh's transfer matrix at the sweeps'
  base (:func:`transfer_from_gamma_sweeps`), whose decomposition into the design's phases
  (:func:`ffzero_lab.photonics.decomposition.decompose`, Clements et al. 2016) is a first guess;
  :func:`fit_mesh_offsets` then fits every mesh ``phi0`` at once (with ``k`` known) to all the
  sweeps' sinusoids through the design (:mod:`ffzero_lab.photonics.design`), from that guess and
  then random starts, until one explains the sweeps to
  within their noise. Offsets that power meters cannot tell apart (a phase common to every input,
  phases in series) are found from the design and pinned to 0 (:func:`blind_directions`,
  :func:`gauge_pins`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares, minimize_scalar

from ffzero_lab.photonics.design import MeshOptics, phase_kind

TWO_PI = 2 * np.pi
#: Samples of one phase that determine a sinusoid of it exactly.
_THIRDS = np.array([0.0, TWO_PI / 3, 2 * TWO_PI / 3])


@dataclass(frozen=True)
class Sinusoids:
    """``P[:, i] = A[i] + Re(c[i] e^{i k u})`` for sweep series i.

    Attributes:
        k: the shared frequency, rad per V^2.
        offset: ``(series,)`` A.
        coefficient: ``(series,)`` complex c.
        residual: RMS residual over the RMS of the readings.
    """

    k: float
    offset: NDArray[np.float64]
    coefficient: NDArray[np.complex128]
    residual: float

    def predict(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(points, series)`` readings at ``u``."""
        return self.offset + (self.coefficient * np.exp(1j * self.k * np.asarray(u)[:, None])).real


def _design(u: NDArray[np.float64], k: float) -> NDArray[np.float64]:
    return np.stack([np.ones_like(u), np.cos(k * u), np.sin(k * u)], axis=1)


def _weighted(
    u: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], k: float
) -> tuple[NDArray[np.float64], float]:
    """Weighted least squares of ``A + B cos(k u) + C sin(k u)`` for every series at once;
    (coefficients (3, series), weighted SSE)."""
    x = _design(u, k)
    xw = x[None, :, :] * w.T[:, :, None]  # (series, points, 3)
    normal = np.einsum("spi,pj->sij", xw, x) + 1e-12 * np.eye(3)
    coef = np.linalg.solve(normal, np.einsum("spi,ps->si", xw, y)[..., None])[..., 0].T
    return coef, float(np.sum(w * (x @ coef - y) ** 2))


def fit_sinusoids(u: NDArray[np.floating], readings: NDArray[np.floating], k_range: tuple[float, float] | None = None,
                  grid: int = 600, rounds: int = 6) -> Sinusoids:
    """Fit sinusoids of one shared frequency in ``u`` to every column of ``readings``.

    The frequency is scanned (linear least squares for the rest at each value), refined, and the
    fit repeated with weights from its residuals (Huber, then Tukey's biweight: iteratively
    reweighted least squares), so that a few bad readings cannot pull it.

    Args:
        u: ``(points,)`` squared voltages, evenly spaced, V^2.
        readings: ``(points, series)`` powers.
        k_range: frequencies to scan, rad/V^2; default from a quarter period over the sweep up to
            half the sampling (Nyquist) frequency.
        grid: frequencies in the scan.
        rounds: reweighting rounds.
    """
    u = np.asarray(u, dtype=np.float64)
    readings = np.asarray(readings, dtype=np.float64).reshape(u.size, -1)
    span = float(u.max() - u.min())
    lo, hi = k_range or (0.5 * np.pi / span, 0.5 * np.pi * (u.size - 1) / span)
    scale = float(np.sqrt(np.mean(readings**2))) or 1.0
    y = readings / scale
    w = np.ones_like(y)
    ks = np.linspace(lo, hi, grid)
    step = ks[1] - ks[0]
    k = float(ks[np.argmin([_weighted(u, y, w, k)[1] for k in ks])])
    for round_ in range(rounds):
        k = float(minimize_scalar(lambda kk: _weighted(u, y, w, kk)[1],
                                  bounds=(max(lo, k - 8 * step), min(hi, k + 8 * step)),
                                  method="bounded", options={"xatol": 1e-12 * k}).x)
        coef, _ = _weighted(u, y, w, k)
        resid = _design(u, k) @ coef - y
        # each series' own robust scale (readings are scaled to RMS 1)
        r = np.abs(resid) / np.maximum(1.4826 * np.median(np.abs(resid), axis=0), 1e-6)
        # Huber first, then Tukey's biweight, which gives gross outliers no weight at all
        w = np.minimum(1.0, 1.345 / np.maximum(r, 1e-300)) if round_ == 0 else np.clip(1 - (r / 4.685) ** 2, 0, 1) ** 2
    residual = float(np.sqrt(np.mean(resid**2)))
    c = coef * scale
    return Sinusoids(k, c[0], c[1] - 1j * c[2], residual)


def modulator_phi0(fit: Sinusoids) -> float:
    """``phi0`` of a modulator from the sinusoid of the total detected power.

    ``a + b sin^2(psi / 2) = a + b / 2 + Re(-(b / 2) e^{i psi})`` with ``psi = phi0 + k u`` and ``b > 0``.
    """
    c = complex(np.sum(fit.coefficient))
    return float(np.mod(np.angle(-c), TWO_PI))


def sinusoid_at(samples: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.complex128]]:
    """``A, c`` of ``A + Re(c e^{i phi})`` from its values at phi = 0, 2 pi/3, 4 pi/3 (axis 0)."""
    a = samples.mean(axis=0)
    c = (2.0 / 3.0) * np.tensordot(np.exp(-1j * _THIRDS), samples, axes=(0, 0))
    return a, c


class MeshSweeps:
    """The design's prediction of every mesh sweep's sinusoids.

    Args:
        optics: the mesh's design, its setting columns the swept phases in order.
        base: ``(n,)`` phase of each phase shifter minus its ``phi0`` while the others are swept
            (``k V_base^2``), rad.
        fields: ``(N, J)`` the input fields of the J input patterns (mode, pattern), up to the
            per-mode scale.
    """

    def __init__(self, optics: MeshOptics, base: NDArray[np.float64], fields: NDArray[np.complex128]) -> None:
        self.optics, self.base, self.fields = optics, base, fields
        n = base.size
        self.n = n
        self._rows = np.repeat(np.arange(n), 3)  # which phase each of the 3n settings sweeps

    def sinusoids(self, phi0: NDArray[np.float64], port_gain: NDArray[np.float64],
                  mode_scale: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.complex128]]:
        """``A, c`` of shape ``(n, N, J)`` as functions of each swept phase's own phase."""
        settings = np.tile(phi0 + self.base, (3 * self.n, 1))
        settings[np.arange(3 * self.n), self._rows] = np.tile(_THIRDS, self.n)
        patterns = (mode_scale[:, None] * self.fields).T  # (J, N): the design's row convention
        powers = self.optics.port_powers(settings, patterns).transpose(0, 2, 1) * port_gain[:, None]
        return sinusoid_at(powers.reshape(self.n, 3, *powers.shape[1:]).transpose(1, 0, 2, 3))


def nearest_unitary(m: NDArray[np.complexfloating], rounds: int = 100) -> NDArray[np.complex128]:
    """The unitary closest to ``m`` once its rows and columns are rescaled (unequal detectors and
    inputs) so that its squared moduli are doubly stochastic (Sinkhorn), then polar projection."""
    power = np.abs(m) ** 2 + 1e-300
    rows, cols = np.ones(m.shape[0]), np.ones(m.shape[1])
    for _ in range(rounds):
        rows = 1.0 / (power @ cols)
        cols = 1.0 / (rows @ power)
    w, _, vh = np.linalg.svd(np.sqrt(rows)[:, None] * m * np.sqrt(cols)[None, :])
    return w @ vh


def transfer_from_gamma_sweeps(offset: NDArray[np.float64], coefficient: NDArray[np.complex128],
                               fields: NDArray[np.complex128]) -> NDArray[np.complex128]:
    """The mesh's transfer at the sweeps' base, up to output phases and row/column scales, from
    the sweeps of the input phases gamma, as (port, mode): the transpose of the design's
    row-convention matrix.

    Args:
        offset: ``(N, N, N + 1)`` A of the sweep of ``gamma[m]`` (axis 0), per port and pattern
            (patterns 0..N-1: one mode lit; N: all lit).
        coefficient: the same for c (against ``V^2``).
        fields: ``(N, N + 1)`` the input fields of the patterns.

    With every mode lit, port p reads ``|a_pm e^{i gamma} + r_pm|^2`` while ``gamma[m]`` sweeps,
    where ``a_pm`` is what mode m brings and ``r_pm`` the rest; the sinusoid's coefficient is
    ``2 a_pm conj(r_pm)`` and mode m lit alone gives ``|a_pm|^2``. With the row's total
    ``S_p = sum_m a_pm`` taken real (the output phase is invisible), ``a_pm = (c_pm / 2 + |a_pm|^2) / S_p``.
    """
    n = offset.shape[0]
    lit = np.array([offset[m, :, m] * abs(fields[m, n]) ** 2 / max(abs(fields[m, m]) ** 2, 1e-30) for m in range(n)]).T
    numer = coefficient[np.arange(n), :, n].T / 2 + lit  # (port, mode)
    total = np.sqrt(np.maximum(np.sum(numer, axis=1).real, 1e-30))
    return numer / total[:, None] / fields[:, n][None, :]


def blind_directions(sweeps: MeshSweeps, seed: int = 0) -> NDArray[np.float64]:
    """``(n, g)`` orthonormal directions of ``phi0`` that no sweep can see.

    They are the null space, at a random point, of the Jacobian with respect to ``phi0`` of the
    sinusoids as the sweeps measure them (against ``V^2``): a phase common to every input, two
    phases in series, a phase common to every output pushed back through the mesh.
    """
    rng = np.random.default_rng(seed)
    phi0 = rng.uniform(0, TWO_PI, sweeps.n)
    gain, scale = np.ones(sweeps.optics.modes), np.ones(sweeps.optics.modes)

    def flat(p: NDArray[np.float64]) -> NDArray[np.float64]:
        a, c = sweeps.sinusoids(p, gain, scale)
        c = c * np.exp(1j * p)[:, None, None]  # as the sweeps see it: against V^2, not the phase
        return np.concatenate([a.ravel(), c.real.ravel(), c.imag.ravel()])

    h = 1e-6
    jac = np.stack([(flat(phi0 + h * e) - flat(phi0 - h * e)) / (2 * h) for e in np.eye(sweeps.n)], axis=1)
    _, sv, vt = np.linalg.svd(jac, full_matrices=True)
    rank = int(np.sum(sv > 1e-7 * sv[0]))
    return vt[rank:].T


def gauge_pins(blind: NDArray[np.float64], names: list[str]) -> list[int]:
    """One phase to pin per blind direction, so that together they fix every one: gammas first
    (in mode order), then phis, never a theta."""
    order = {"gamma": 0, "phi": 1, "theta": 2}
    candidates = sorted((i for i in range(len(names)) if phase_kind(names[i]) != "theta"),
                        key=lambda i: (order[phase_kind(names[i])], i))
    pins: list[int] = []
    for i in candidates:
        if len(pins) == blind.shape[1]:
            break
        if np.linalg.matrix_rank(blind[pins + [i]], tol=1e-6) == len(pins) + 1:
            pins.append(i)
    return sorted(pins)


def pin(phi0: NDArray[np.float64], blind: NDArray[np.float64], pins: list[int]) -> NDArray[np.float64]:
    """``phi0`` moved along the blind directions until the pinned phases are 0 (mod 2 pi): the
    same readings, in the calibration's convention (to compare a chip's true laws with a fit)."""
    if not pins:
        return np.mod(phi0, TWO_PI)
    shift = np.linalg.solve(blind[pins], -phi0[pins])
    return np.mod(phi0 + blind @ shift, TWO_PI)


def _scan_each(residuals: Callable[[NDArray[np.float64]], NDArray[np.float64]], x: NDArray[np.float64],
               phases: int, grid: int = 24) -> NDArray[np.float64] | None:
    """Each of the first ``phases`` entries of ``x`` in turn moved to its best value on a grid
    over the circle (the others held): a way out of the local minima a descent stops in. None
    when no entry moves."""
    x = x.copy()
    cost = float(np.sum(residuals(x) ** 2))
    moved = False
    for i in range(phases):
        trial = x.copy()
        best_value, best_cost = x[i], cost
        for value in x[i] + TWO_PI * np.arange(1, grid) / grid:
            trial[i] = value
            c = float(np.sum(residuals(trial) ** 2))
            if c < best_cost * (1 - 1e-9):
                best_value, best_cost = value, c
        if best_value != x[i]:
            x[i], cost, moved = best_value, best_cost, True
    return x if moved else None


@dataclass(frozen=True)
class MeshFit:
    """Every mesh ``phi0`` (rad; pinned ones 0), the blind directions ``(n, g)`` and the pins, the
    per-port gains and per-mode input scales, how well the design explains the sweeps (RMS
    residual over RMS data), how many starts ran and whether the fit reached the noise."""

    phi0: NDArray[np.float64]
    blind: NDArray[np.float64]
    pinned: list[int]
    port_gain: NDArray[np.float64]
    mode_scale: NDArray[np.float64]
    residual: float
    starts: int
    converged: bool


def fit_mesh_offsets(sweeps: MeshSweeps, offset: NDArray[np.float64], coefficient: NDArray[np.complex128],
                     names: list[str], noise: float, starts: int = 60, seed: int = 0,
                     guesses: Sequence[NDArray[np.float64]] = ()) -> MeshFit:
    """Fit every mesh phase's ``phi0`` to the measured sinusoids.

    Each random start is a Levenberg-Marquardt fit, followed, where it stops short, by a scan of
    each phase alone over the circle and a new fit, as long as the scans improve it. The first
    start whose residual is within a few times the sweeps' own noise is taken (local minima leave
    far more), else the best of all.

    Args:
        sweeps: the design's prediction.
        offset: ``(n, N, J)`` measured A of each sweep, port and input pattern.
        coefficient: ``(n, N, J)`` measured c against ``u = V^2``; the design predicts it against
            the phase, ``c e^{-i phi0}``, so the data are turned by the ``phi0`` being fitted.
        names: the phase names.
        noise: the sweeps' relative residual (of their sinusoid fits).
        starts: most random starts.
        seed: seeds the starts.
        guesses: ``(n,)`` guesses of ``phi0`` (e.g. from :func:`decompose`), tried first (those
            that explain the sweeps best first), then random starts; ``starts`` counts both.
    """
    n, modes = sweeps.n, sweeps.optics.modes
    blind = blind_directions(sweeps, seed)
    pins = gauge_pins(blind, names)
    free = np.array([i for i in range(n) if i not in pins], dtype=np.intp)
    scale = float(np.sqrt(np.mean(offset**2 + np.abs(coefficient) ** 2))) or 1.0
    a_data, c_data = offset / scale, coefficient / scale
    good = 3.0 * noise + 1e-6

    def unpack(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        phi0 = np.zeros(n)
        phi0[free] = x[: free.size]
        gain = np.exp(x[free.size : free.size + modes])
        mode = np.exp(np.concatenate([[0.0], x[free.size + modes :]]))
        return phi0, gain, mode

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        phi0, gain, mode = unpack(x)
        a, c = sweeps.sinusoids(phi0, gain, mode)
        turned = c_data * np.exp(-1j * phi0)[:, None, None]
        return np.concatenate([(a - a_data).ravel(), (c - turned).real.ravel(), (c - turned).imag.ravel()])

    # gains start where the total detected power says: the mesh only redistributes light
    total = np.sum(a_data, axis=1).mean() / max(float(np.mean(np.sum(np.abs(sweeps.fields) ** 2, axis=0))), 1e-30)
    rng = np.random.default_rng(seed)
    best: tuple[float, NDArray[np.float64]] | None = None
    tried = 0
    gains = np.concatenate([np.full(modes, np.log(max(total, 1e-30))), np.zeros(modes - 1)])
    first = sorted((pin(np.asarray(g, dtype=np.float64), blind, pins)[free] for g in guesses),
                   key=lambda g: float(np.sum(residuals(np.concatenate([g, gains])) ** 2)))
    for tried in range(1, starts + 1):
        x = np.concatenate([first.pop(0) if first else rng.uniform(0, TWO_PI, free.size), gains])
        residual = np.inf
        while True:  # Levenberg-Marquardt, then a scan of each phase alone; until the scans find nothing
            fit = least_squares(residuals, x, method="lm")
            if not float(np.sqrt(np.mean(fit.fun**2))) < residual * (1 - 1e-6):
                break
            x, residual = fit.x, float(np.sqrt(np.mean(fit.fun**2)))
            if residual <= good:
                break
            scanned = _scan_each(residuals, x, free.size)
            if scanned is None:
                break
            x = scanned
        if best is None or residual < best[0]:
            best = (residual, x)
        if residual <= good:
            break
    assert best is not None
    phi0, gain, mode = unpack(best[1])
    return MeshFit(np.mod(phi0, TWO_PI), blind, pins, gain * scale, mode, best[0], tried, best[0] <= good)

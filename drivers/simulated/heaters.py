"""Thermo-optic phase shifters of a simulated chip: calibration law, DAC, crosstalk, settling.

Each heater i follows the thermo-optic law ``phi_i = phi0_i + k_i V_i^2``
(:class:`ffzero_lab.photonics.heaters.PhaseLaws`), with ``phi0`` and ``k`` drawn once per chip.
The controller knows each channel's law (as after a perfect calibration), so a requested phase
becomes the voltage ``V = sqrt(((phi - phi0) mod 2 pi) / k)``,
quantised by a DAC of ``bits`` over ``[0, v_max]``. Neighbouring heaters share heat: the
phase a heater produces also shifts its neighbours by ``coupling`` times its own thermal phase
``k V^2``. After a change, a heater's phase relaxes exponentially (time constant tau) towards
its new value, so a reading taken ``settle`` seconds later sees
``new + (old - new) exp(-settle / tau)``.

Phases in radians, voltages in volts, times in seconds. Batched over settings ``(S, n)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.photonics.heaters import PhaseLaws

if TYPE_CHECKING:
    import scipy.sparse

TWO_PI = 2 * np.pi


@dataclass(frozen=True)
class HeaterBank:
    """Every heater of one mesh.

    Attributes:
        phi0: ``(n,)`` phase at 0 V, radians.
        k: ``(n,)`` phase per volt squared, rad/V^2.
        v_max: DAC full scale, volts.
        bits: DAC resolution; 0 means an ideal (continuous) source.
        coupling: ``(n, n)`` sparse thermal crosstalk (zero diagonal) or None.
        settle_factor: ``exp(-settle / tau)``, the fraction of a change not yet settled when
            a reading is taken; 0 means fully settled.
    """

    phi0: NDArray[np.float64]
    k: NDArray[np.float64]
    v_max: float
    bits: int
    coupling: scipy.sparse.csr_matrix | None
    settle_factor: float

    @cached_property
    def laws(self) -> PhaseLaws:
        """The heaters' phase laws."""
        return PhaseLaws(self.phi0, self.k)

    @property
    def ideal(self) -> bool:
        """True when requested phases are produced exactly."""
        return self.bits == 0 and self.coupling is None and self.settle_factor == 0.0

    def voltages(
        self, phases: NDArray[np.floating], reference: NDArray[np.floating] | None = None
    ) -> NDArray[np.float64]:
        """Voltages ``(S, n)`` the controller writes for requested phases ``(S, n)``, DAC-quantised.

        A phase is reached on every branch ``phi + 2 pi m`` that fits under ``v_max``. The
        controller takes the branch whose voltage is closest to ``reference`` (``(n,)``, the
        voltages applied now), as lab controllers do, so that a small phase change never
        makes a heater jump by a whole 2 pi of thermal power (and its neighbours with it,
        through crosstalk). Without a reference, the lowest branch.
        """
        v = self.laws.voltages_V(phases)
        if np.any(v > self.v_max):
            worst = float(v.max())
            raise ValueError(f"a phase needs {worst:.3f} V, above the {self.v_max} V full scale")
        if reference is not None:
            branches = int(np.floor(float(np.max(self.k)) * self.v_max**2 / TWO_PI)) + 1
            candidates = self.laws.branch_voltages_V(phases, branches)  # (M, S, n)
            distance = np.where(candidates <= self.v_max, np.abs(candidates - reference), np.inf)
            v = np.take_along_axis(candidates, distance.argmin(axis=0)[None], axis=0)[0]
        if self.bits:
            step = self.v_max / (2**self.bits - 1)
            v = np.round(v / step) * step
        return v

    def thermal_phases(self, voltages: NDArray[np.floating]) -> NDArray[np.float64]:
        """Settled phases ``(S, n)`` produced by voltages ``(S, n)``, crosstalk included."""
        own = self.laws.thermal_shift_rad(voltages)
        phases = self.phi0 + own
        if self.coupling is not None:
            phases = phases + (self.coupling @ own.T).T
        return phases

    def produced(
        self, phases: NDArray[np.floating], reference: NDArray[np.floating] | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Settled phases ``(S, n)`` the chip produces when ``phases`` are requested, and the
        voltages ``(S, n)`` written for them (None for ideal heaters, where no voltage is modelled).

        ``reference``: the voltages applied now (see :meth:`voltages`).
        """
        if self.bits == 0 and self.coupling is None:
            return np.asarray(phases, dtype=np.float64), None
        volts = self.voltages(phases, reference)
        return self.thermal_phases(volts), volts


def settle(targets: NDArray[np.floating], previous: NDArray[np.floating], factor: float) -> NDArray[np.float64]:
    """Phases seen by readings taken one settle time after each of a sequence of changes.

    ``seen_s = target_s + factor * (seen_{s-1} - target_s)``, with ``seen_{-1} = previous``:
    a first-order filter along the settings axis (no Python loop).

    Args:
        targets: ``(S, n)`` settled phases of the settings, in the order they are applied.
        previous: ``(n,)`` phases when the first setting is applied.
        factor: ``exp(-settle / tau)`` in [0, 1).
    """
    targets = np.asarray(targets, dtype=np.float64)
    if factor == 0.0:
        return targets
    import scipy.signal  # lazy: a quarter of a second, for the settling of non-ideal heaters only

    zi = (factor * np.asarray(previous, dtype=np.float64))[None, :]
    seen, _ = scipy.signal.lfilter([1.0 - factor], [1.0, -factor], targets, axis=0, zi=zi)
    return seen


def neighbour_coupling(positions: NDArray[np.integer], strength: float) -> scipy.sparse.csr_matrix | None:
    """Crosstalk between heaters that sit next to each other.

    Args:
        positions: ``(n, 3)`` integer (group, column, row) of every heater; heaters of the same
            group and column whose rows differ by one are neighbours.
        strength: fraction of a neighbour's thermal phase that a heater picks up.

    Returns:
        ``(n, n)`` sparse matrix, or None when ``strength`` is 0.
    """
    if strength == 0.0:
        return None
    import scipy.sparse  # lazy: only a chip with crosstalk needs it

    positions = np.asarray(positions)
    order = np.lexsort((positions[:, 2], positions[:, 1], positions[:, 0]))
    p = positions[order]
    adjacent = (np.all(p[1:, :2] == p[:-1, :2], axis=1)) & (p[1:, 2] - p[:-1, 2] == 1)
    i, j = order[:-1][adjacent], order[1:][adjacent]
    n = positions.shape[0]
    rows = np.concatenate([i, j])
    cols = np.concatenate([j, i])
    return scipy.sparse.csr_matrix((np.full(rows.size, strength), (rows, cols)), shape=(n, n))

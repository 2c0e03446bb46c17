"""``ffzero-lab calibrate``: sweep every heater channel of the rig's meshes and fit its phase law.

For each mesh, with every heater of the rig starting at its safe value:

1. **Input modulators.** Each is swept over voltages evenly spaced in ``V^2`` while the detectors
   read every port; the mesh only redistributes light, so the total is ``a + b sin^2(psi / 2)``:
   ``k`` and ``phi0`` follow (:func:`.fit.modulator_phi0`). A second pass sweeps each again with the
   others dark (by the first pass's laws), so that unequal detectors cannot bias it.
2. **Mesh phases.** Each is swept the same way, the others held at their safe values; at every
   voltage the inputs go through N + 1 patterns (light into one mode, for each mode, then into all)
   and every port is read. Each channel's ``k`` is the frequency shared by all its sinusoids
   (:func:`.fit.fit_sinusoids`); the sweeps of the input phases give the mesh's transfer matrix,
   decomposed into the design's phases for a first guess, and the ``phi0`` of all of them come from
   one fit of the design to all sweeps (:func:`.fit.fit_mesh_offsets`), with the offsets power
   meters cannot see pinned.

Every write goes through the drivers (limits and budget checked before a byte is sent); before
anything is written the sweeps are checked against the channel limits and the power budget. The
heaters end at their safe values however the calibration ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.table import Table

from ffzero_lab.calibration.fit import (
    MeshFit,
    MeshSweeps,
    Sinusoids,
    fit_mesh_offsets,
    fit_sinusoids,
    modulator_phi0,
    nearest_unitary,
    transfer_from_gamma_sweeps,
)
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.core.signals import deferred, interruptible
from ffzero_lab.photonics.decomposition import decompose
from ffzero_lab.photonics.design import MeshOptics, modulator_field
from ffzero_lab.photonics.heaters import PhaseLaws
from ffzero_lab.rig import ChannelRef, RigConfig
from ffzero_lab.rig.calibration_file import (
    CalibrationFile,
    ChannelLaw,
    save_calibration,
)
from ffzero_lab.rig.io import RigIO
from ffzero_lab.rig.spec import Channels, LayerSpec, layer_specs


@dataclass
class ChannelSweep:
    """One channel's sweep: squared voltages ``(points,)``, readings ``(points, series)`` and the
    labels of the series, the fitted sinusoids and the law it gave."""

    ref: ChannelRef
    role: str
    u: NDArray[np.float64]
    readings: NDArray[np.float64]
    labels: list[str]
    fit: Sinusoids
    law: ChannelLaw | None = None


@dataclass
class CalibrationResult:
    """What a calibration measured and wrote."""

    file: CalibrationFile
    sweeps: list[ChannelSweep] = field(default_factory=list)
    mesh_fits: list[MeshFit] = field(default_factory=list)

    def table(self) -> Table:
        table = Table(title="phase laws phi = phi0 + k V^2", title_justify="left")
        for column in ("channel", "drives", "phi0 rad", "k rad/V^2", "residual"):
            table.add_column(column, justify="left" if column in ("channel", "drives") else "right")
        for sweep in self.sweeps:
            law = sweep.law
            assert law is not None
            table.add_row(f"{sweep.ref.instrument}:{sweep.ref.channel}", sweep.role,
                          f"{law.phi0_rad:.4f}" + (" (pinned)" if law.pinned else ""), f"{law.k_rad_per_V2:.5f}",
                          f"{law.residual:.2e}" if law.residual is not None else "-")
        return table


def sweep_voltages_V(rig: RigConfig, ref: ChannelRef, points: int) -> NDArray[np.float64]:
    """Voltages evenly spaced in ``V^2`` over what the channel may be given."""
    limits = rig.heater_channel_limits(ref.instrument)[ref.channel]
    top = min(limits.voltage_max_V, limits.current_max_mA * limits.resistance_ohm / 1e3)
    low = max(limits.voltage_min_V, 0.0)
    return np.sqrt(np.linspace(low**2, top**2, points))


def check_sweeps(rig: RigConfig, specs: list[LayerSpec], source: str) -> None:
    """The sweeps against the power budget: one mesh channel at the top of its range and every
    modulator of its mesh at the top of theirs, the rest safe.

    Raises:
        ConfigError: naming ``power_budget_W``.
    """
    def top_W(ref: ChannelRef) -> float:
        limits = rig.heater_channel_limits(ref.instrument)[ref.channel]
        return float(sweep_voltages_V(rig, ref, 2)[-1] ** 2 / limits.resistance_ohm - limits.safe_power_W)

    safe = sum(lim.safe_power_W for inst in rig.instruments.values() if inst.channels is not None
               for lim in inst.channels.all_limits())
    for spec in specs:
        worst = safe + sum(top_W(r) for r in spec.modulators.refs) + max(top_W(r) for r in spec.phases.refs)
        if worst > rig.power_budget_W:
            raise ConfigError(f"{spec.where}'s calibration sweeps may draw {worst:.4g} W, above the budget "
                              f"{rig.power_budget_W:.4g} W", source, "power_budget_W")


class Calibrator:
    """The sweeps of one rig, on its open instruments.

    Args:
        rig: the instruments file.
        io: the open instruments.
        points: voltages per sweep.
        progress: receives one line per step.
    """

    def __init__(self, rig: RigConfig, io: RigIO, points: int, progress: Callable[[str], None]) -> None:
        self.rig, self.io, self.points, self.progress = rig, io, points, progress

    def _sweep(self, channel: ChannelRef, kind: str, measure: Callable[[], NDArray[np.float64]],
               hold: dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]]) -> tuple[NDArray, NDArray]:
        """Sweep one channel with the others held at ``hold``; ``measure()`` at each voltage."""
        volts = sweep_voltages_V(self.rig, channel, self.points)
        readings = []
        for v in volts:
            targets = {name: (ch.copy(), vals.copy()) for name, (ch, vals) in hold.items()}
            ch, vals = targets[channel.instrument]
            vals[np.flatnonzero(ch == channel.channel)] = v
            self.io.write(targets, kind)
            readings.append(measure())
        return volts**2, np.array(readings)

    def _safe_hold(self, *groups: Channels) -> dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]]:
        """Every channel of ``groups`` at its safe value."""
        hold: dict[str, tuple[list[int], list[float]]] = {}
        for group in groups:
            for ref in group.refs:
                ch, vals = hold.setdefault(ref.instrument, ([], []))
                ch.append(ref.channel)
                vals.append(float(self.io.safe_V[ref.instrument][ref.channel]))
        return {n: (np.array(c, dtype=np.intp), np.array(v)) for n, (c, v) in hold.items()}

    def modulators(self, spec: LayerSpec) -> tuple[PhaseLaws, list[ChannelSweep]]:
        """Both passes over the mesh's input modulators; their laws and the second pass's sweeps."""
        laws: PhaseLaws | None = None
        sweeps: list[ChannelSweep] = []
        for attempt in (1, 2):
            phi0, k, sweeps = [], [], []
            for m, (ref, role) in enumerate(zip(spec.modulators.refs, spec.modulators.roles, strict=True)):
                hold = self._safe_hold(spec.phases, spec.modulators)
                if laws is not None:  # the others dark, where their range allows
                    dark = np.minimum(laws.voltages_V(np.zeros(spec.modes)), self._tops(spec.modulators))
                    for other, other_ref in enumerate(spec.modulators.refs):
                        ch, vals = hold[other_ref.instrument]
                        vals[np.flatnonzero(ch == other_ref.channel)] = dark[other]
                u, readings = self._sweep(ref, "input", lambda: self.io.read_ports(spec.detectors), hold)
                fit = fit_sinusoids(u, readings)
                phi0.append(modulator_phi0(fit))
                k.append(fit.k)
                sweeps.append(ChannelSweep(ref, role, u, readings, [f"port {p}" for p in range(spec.modes)], fit))
            laws = PhaseLaws(phi0, k)
            self.progress(f"{spec.where}: input modulators, pass {attempt}: k = "
                          + ", ".join(f"{v:.4g}" for v in k) + " rad/V^2")
        assert laws is not None
        for sweep, p0, kk in zip(sweeps, laws.phi0_rad, laws.k_rad_per_V2, strict=True):
            sweep.law = ChannelLaw(phi0_rad=float(p0), k_rad_per_V2=float(kk), role=sweep.role,
                                   residual=sweep.fit.residual)
        return laws, sweeps

    def _tops(self, channels: Channels) -> NDArray[np.float64]:
        return np.array([sweep_voltages_V(self.rig, r, 2)[-1] for r in channels.refs])

    def patterns(self, spec: LayerSpec, laws: PhaseLaws) -> tuple[NDArray[np.float64], NDArray[np.complex128]]:
        """Modulator voltages ``(J, N)`` of the input patterns (one mode lit, for each mode; all
        lit) and the fields ``(N, J)`` they pass, by the modulators' laws."""
        n = spec.modes
        wanted = np.vstack([np.where(np.eye(n, dtype=bool), np.pi, 0.0), np.full((1, n), np.pi)])
        volts = np.minimum(laws.voltages_V(wanted), self._tops(spec.modulators))
        return volts, modulator_field(laws.phases_rad(volts)).T

    def mesh(
        self, spec: LayerSpec, modulator_laws: PhaseLaws, starts: int, seed: int
    ) -> tuple[list[ChannelSweep], MeshFit]:
        """Sweep every mesh phase under every input pattern; fit their laws."""
        volts_in, fields = self.patterns(spec, modulator_laws)
        hold = self._safe_hold(spec.phases)
        labels = [f"port {p}, {'all modes' if j == spec.modes else f'mode {j}'} in"
                  for p in range(spec.modes) for j in range(volts_in.shape[0])]

        def measure() -> NDArray[np.float64]:
            rows = np.empty((volts_in.shape[0], spec.modes))
            for j, volts in enumerate(volts_in):
                self.io.write(spec.modulators.grouped(volts), "input")
                rows[j] = self.io.read_ports(spec.detectors)
            return rows.T.ravel()  # (port, pattern)

        sweeps = []
        for ref, role in zip(spec.phases.refs, spec.phases.roles, strict=True):
            u, readings = self._sweep(ref, "phase", measure, hold)
            sweeps.append(ChannelSweep(ref, role, u, readings, labels, fit_sinusoids(u, readings)))
        self.progress(f"{spec.where}: swept {len(sweeps)} mesh phases under {volts_in.shape[0]} input patterns")
        k = np.array([s.fit.k for s in sweeps])
        base = k * np.array([self.io.safe_V[r.instrument][r.channel] for r in spec.phases.refs]) ** 2
        design = MeshSweeps(MeshOptics(spec.modes, spec.names), base, fields)
        offset = np.stack([s.fit.offset.reshape(spec.modes, -1) for s in sweeps])
        coefficient = np.stack([s.fit.coefficient.reshape(spec.modes, -1) for s in sweeps])
        noise = float(np.median([s.fit.residual for s in sweeps]))
        mesh_fit = fit_mesh_offsets(design, offset, coefficient, list(spec.names), noise, starts, seed,
                                    guesses=self._guesses(spec, offset, coefficient, fields, base))
        self.progress(f"{spec.where}: mesh design fitted after {mesh_fit.starts} starts, residual "
                      f"{mesh_fit.residual:.2e} (sweep noise {noise:.2e}); phi0 pinned by convention: "
                      + (", ".join(spec.names[i] for i in mesh_fit.pinned) or "none"))
        if not mesh_fit.converged:
            self.progress(f"[yellow]warning[/]: {spec.where}: no start explained the sweeps to their noise; "
                          "the mesh phases' phi0 may be wrong (k is not affected): try more --starts")
        for i, sweep in enumerate(sweeps):
            sweep.law = ChannelLaw(phi0_rad=float(mesh_fit.phi0[i]), k_rad_per_V2=sweep.fit.k, role=sweep.role,
                                   residual=sweep.fit.residual, pinned=i in mesh_fit.pinned)
        return sweeps, mesh_fit


    @staticmethod
    def _guesses(spec: LayerSpec, offset: NDArray[np.float64], coefficient: NDArray[np.complex128],
                 fields: NDArray[np.complex128], base: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        """``phi0`` guesses from the transfer matrix the gamma sweeps give, decomposed into the
        design's phases every way it can be (at most 4096); none unless every phase is mapped."""
        names = list(spec.names)
        mzis = spec.modes * (spec.modes - 1) // 2
        if len(names) != spec.modes**2 or mzis > 12:
            return []
        gammas = [names.index(f"gamma[{m}]") for m in range(spec.modes)]
        u = nearest_unitary(transfer_from_gamma_sweeps(offset[gammas], coefficient[gammas], fields))
        guesses = []
        for flips in range(2**mzis):
            phases = decompose(u.T, flips)
            guesses.append(np.mod(np.array([phases.get(n, 0.0) for n in names]) - base, 2 * np.pi))
        return guesses


def _placeholder(rig: RigConfig) -> CalibrationFile:
    """Laws for every heater channel, so that the meshes can be described before they are measured."""
    return CalibrationFile(channels={
        name: {c: ChannelLaw(phi0_rad=0.0, k_rad_per_V2=1.0) for c in range(inst.channels.count)}
        for name, inst in rig.instruments.items() if inst.channels is not None})


def run_calibration(rig: RigConfig, source: str, target: Path, points: int = 24, starts: int = 100, seed: int = 0,
                    progress: Callable[[str], None] = lambda _: None,
                    sleep: Callable[[float], None] | None = None) -> CalibrationResult:
    """Calibrate every mesh of ``rig`` and write ``target``; the sweeps are in the result
    (:func:`ffzero_lab.calibration.plots.plot_sweeps` draws one PNG per channel).

    Raises:
        ConfigError: the file maps no mesh fully, or the sweeps would not fit the power budget.
            A mesh fed optically (no modulators of its own to sweep it through) is skipped with a
            warning: its laws must be given in the calibration file.
        InstrumentError, LimitError: from the instruments; the heaters are made safe first.
    """
    specs = layer_specs(rig, _placeholder(rig), source)
    for spec in specs:
        if spec.optical:
            progress(f"[yellow]warning[/]: {spec.where} is fed optically and has no input modulators to sweep it "
                     "through: not calibrated; give its channels' laws in the calibration file")
    specs = [spec for spec in specs if not spec.optical]  # never all: the first mesh has modulators
    check_sweeps(rig, specs, source)
    with interruptible():
        io = RigIO(rig, source) if sleep is None else RigIO(rig, source, sleep)
        return _calibrate(rig, io, specs, target, points, starts, seed, progress)


def _calibrate(rig: RigConfig, io: RigIO, specs: list[LayerSpec], target: Path, points: int, starts: int, seed: int,
               progress: Callable[[str], None]) -> CalibrationResult:
    """The sweeps and fits on open instruments; the heaters safe and the instruments closed on
    every exit (a signal on the way is held off until they are)."""
    result = CalibrationResult(CalibrationFile(rig=rig.name, created=datetime.now().isoformat(timespec="seconds")))
    try:
        io.safe_state()
        calibrator = Calibrator(rig, io, points, progress)
        for spec in specs:
            modulator_laws, modulator_sweeps = calibrator.modulators(spec)
            mesh_sweeps, mesh_fit = calibrator.mesh(spec, modulator_laws, starts, seed)
            io.safe_state()
            result.sweeps += modulator_sweeps + mesh_sweeps
            result.mesh_fits.append(mesh_fit)
    finally:
        with deferred():
            try:
                io.safe_state()
            finally:
                io.close()
    for sweep in result.sweeps:
        assert sweep.law is not None
        result.file.channels.setdefault(sweep.ref.instrument, {})[sweep.ref.channel] = sweep.law
    save_calibration(target, result.file)
    return result


"""Each non-ideality of the simulated chip has a visible, configured effect (and none when off)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.simulated.detector import LIGHT, PLANCK, Detector, LaserDrift
from drivers.simulated.heaters import HeaterBank, neighbour_coupling, settle
from drivers.simulated.mesh import MeshSettings, SimulatedMesh

N = 8


def mesh(**settings: object) -> SimulatedMesh:
    return SimulatedMesh(N, MeshSettings(init="random", **settings), seed=7)


def unit_inputs(batch: int = 5, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random((batch, N))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_ideal_preset_changes_nothing() -> None:
    m = mesh()
    x = unit_inputs()
    settings = m.get_parameters()[None] + np.random.default_rng(1).normal(0, 0.01, (3, m.n_params))
    taps = m.evaluate(x, settings)
    ref = np.abs(np.einsum("bi,sij->sbj", x, np.stack([_matrix_at(m, s) for s in settings]))) ** 2
    np.testing.assert_allclose(taps, ref, atol=1e-12)


def _matrix_at(m: SimulatedMesh, theta: np.ndarray) -> np.ndarray:
    saved = m.get_parameters()
    m.set_parameters(theta)
    u = m.matrix()
    m.set_parameters(saved)
    return u


def test_quantisation_makes_nearby_phases_indistinguishable() -> None:
    quantised, continuous = mesh(dac_bits=8), mesh(dac_bits=0)
    x = unit_inputs()
    base = quantised.get_parameters()
    # one DAC step at V ~ 6 V is about 2 k V dV = 2 * 0.098 * 6 * 0.047 = 0.055 rad
    near = np.stack([base, base + 1e-4])
    tq = quantised.evaluate(x, near)
    tc = continuous.evaluate(x, near)
    assert np.array_equal(tq[0], tq[1])
    assert not np.allclose(tc[0], tc[1], rtol=0, atol=1e-12)


def test_crosstalk_moves_a_neighbours_phase_only() -> None:
    positions = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 0], [1, 0, 1]])
    coupling = neighbour_coupling(positions, 0.1)
    bank = HeaterBank(np.zeros(5), np.full(5, 0.1), 12.0, 0, coupling, 0.0)
    base = np.full((1, 5), 1.0)
    moved = base.copy()
    moved[0, 1] = 2.0  # heater 1's own thermal phase goes from 1 to 2 rad
    delta = bank.produced(moved)[0] - bank.produced(base)[0]
    # its neighbours in the same group and column (rows 0 and 2) pick up 10 % of the change
    np.testing.assert_allclose(delta[0], [0.1, 1.0, 0.1, 0.0, 0.0], atol=1e-12)


def test_crosstalk_changes_the_chip_output() -> None:
    x = unit_inputs()
    a, b = mesh(crosstalk=0.05), mesh()
    assert not np.allclose(a.evaluate(x, a.get_parameters()), b.evaluate(x, b.get_parameters()))


def test_detector_noise_has_the_configured_variance() -> None:
    rng = np.random.default_rng(0)
    power = np.full(200_000, 1e-6)
    read = Detector(read_noise_W=1e-9).read(power, rng)
    assert np.std(read) == pytest.approx(1e-9, rel=0.02)
    shot = Detector(shot_noise=True, bandwidth_Hz=1e3).read(power, rng)
    expected = np.sqrt(2 * PLANCK * LIGHT / 1550e-9 * 1e-6 * 1e3)  # ~1.6e-11 W, 1.6e-5 of the signal
    assert np.std(shot) == pytest.approx(expected, rel=0.02)
    assert np.mean(shot) == pytest.approx(1e-6, rel=1e-6)


def test_adc_quantises_and_clips() -> None:
    det = Detector(adc_bits=4, range_W=1.5)  # step 0.1 W
    read = det.read(np.array([0.04, 0.06, 0.73, 2.0, -0.2]), np.random.default_rng(0))
    np.testing.assert_allclose(read, [0.0, 0.1, 0.7, 1.5, 0.0])


def test_laser_drifts_as_a_random_walk() -> None:
    drift = LaserDrift(1e-2, np.random.default_rng(0))
    levels = drift.factors(np.arange(1, 10_001, dtype=float))  # 1 s apart
    steps = np.diff(levels)
    assert np.std(steps) == pytest.approx(1e-2, rel=0.05)
    assert LaserDrift(0.0, np.random.default_rng(0)).factors(np.arange(5.0)).tolist() == [1.0] * 5


def test_chip_readings_drift_over_time() -> None:
    m = mesh(laser_drift_per_sqrt_s=0.05)
    x = unit_inputs(1)
    totals = np.array([m.evaluate(x, m.get_parameters()).sum() for _ in range(50)])
    assert np.std(totals) > 1e-3
    steady = mesh()
    totals = np.array([steady.evaluate(x, steady.get_parameters()).sum() for _ in range(5)])
    assert np.ptp(totals) < 1e-12


def test_insertion_loss_removes_power() -> None:
    x = unit_inputs()
    lossy, clean = mesh(insertion_loss_dB=0.1), mesh()
    out = lossy.evaluate(x, lossy.get_parameters()).sum(axis=-1)
    np.testing.assert_allclose(clean.evaluate(x, clean.get_parameters()).sum(axis=-1), 1.0)
    # every path crosses between N/2 and N lossy MZIs of the N columns
    assert np.all(out <= 10 ** (-0.1 * N / 2 / 10) + 1e-12)
    assert np.all(out >= 10 ** (-0.1 * N / 10) - 1e-12)


def test_settling_mixes_old_and_new_phases() -> None:
    seen = settle(np.array([[1.0], [1.0], [1.0]]), np.array([0.0]), 0.5)
    np.testing.assert_allclose(seen[:, 0], [0.5, 0.75, 0.875])
    x = unit_inputs()
    early = mesh(thermal_tau_s=1e-3, settle_s=1e-4)  # reads after 0.1 tau: mostly old phases
    late = mesh(thermal_tau_s=1e-6, settle_s=1e-3)
    jump = early.get_parameters() + 0.5
    np.testing.assert_allclose(late.evaluate(x, jump[None]), _ideal_taps(jump, x), atol=1e-10)
    assert not np.allclose(early.evaluate(x, jump[None]), _ideal_taps(jump, x), atol=1e-3)


def _ideal_taps(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    ideal = mesh()
    return ideal.evaluate(x, theta[None])


def test_realistic_preset_and_overrides() -> None:
    s = MeshSettings(preset="realistic", crosstalk=0.0)
    assert s.resolved("dac_bits") == 16 and s.resolved("crosstalk") == 0.0
    assert MeshSettings().resolved("shot_noise") is False
    m = SimulatedMesh(N, MeshSettings(preset="realistic"), seed=1)
    taps = m.evaluate(unit_inputs(), m.get_parameters())
    assert taps.shape == (1, 5, N) and np.all(taps >= 0) and taps.sum(axis=-1).max() < 1e-3


def test_controller_keeps_a_heater_on_its_branch_across_the_wrap() -> None:
    """A phase stepping across phi0 (the wrap) stays continuous in voltage with a reference."""
    bank = HeaterBank(np.zeros(1), np.full(1, 2 * np.pi / 64), 12.0, 0, None, 0.0)
    near_wrap = np.array([[2 * np.pi - 1e-3], [1e-3]])  # just below and just above the wrap
    lowest = bank.voltages(near_wrap)
    assert lowest[0, 0] > 7.9 and lowest[1, 0] < 0.2  # a jump of ~8 V without hysteresis
    held = bank.voltages(near_wrap, reference=np.array([8.0]))
    assert abs(held[1, 0] - held[0, 0]) < 0.01  # the second phase taken on the 2 pi + branch
    np.testing.assert_allclose(np.mod(bank.thermal_phases(held), 2 * np.pi), np.mod(near_wrap, 2 * np.pi), atol=1e-9)

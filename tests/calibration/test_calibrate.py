"""``ffzero-lab calibrate`` against the emulated rig, and the fits it rests on."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from drivers.emulated.rig import EmulatedRig
from ffzero_lab.calibration.fit import (
    MeshSweeps,
    blind_directions,
    fit_sinusoids,
    gauge_pins,
    nearest_unitary,
    pin,
    transfer_from_gamma_sweeps,
)
from ffzero_lab.cli.app import app
from ffzero_lab.photonics.decomposition import decompose
from ffzero_lab.photonics.design import MeshOptics, mesh_phase_names
from ffzero_lab.rig import load_calibration, load_specs
from tests.rig.conftest import live_instruments_file

#: Input fields ``(modes, patterns)``: light into each mode alone, then into all.
PATTERNS = np.hstack([np.eye(4), np.ones((4, 1))]).astype(complex)


def circular(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| on the circle, rad."""
    return np.abs(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b)))))


def test_calibration_recovers_the_emulated_chips_phase_laws(
    start_rig: Callable[..., EmulatedRig], tmp_path: Path
) -> None:
    emulated = start_rig(chip={"noise": 1e-3, "seed": 5})
    instruments = live_instruments_file(emulated, tmp_path)
    output, plots = tmp_path / "fitted.yaml", tmp_path / "plots"
    result = CliRunner().invoke(app, ["calibrate", "--instruments", str(instruments), "--output", str(output),
                                      "--plots", str(plots), "--points", "16"])
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)  # left safe
    fitted = load_calibration(output)
    chip = emulated.chip
    laws = fitted.channels["heaters"]
    assert sorted(laws) == list(range(20))
    k = np.array([laws[c].k_rad_per_V2 for c in range(20)])
    np.testing.assert_allclose(k, chip.laws["heaters"].k_rad_per_V2[:20], rtol=0.02)
    # modulators and every MZI's theta: phi0 as it is
    direct = [c for c in range(20) if c >= 16 or "theta" in (laws[c].role or "")]
    assert len(direct) == 10
    errors = circular([laws[c].phi0_rad for c in direct], chip.laws["heaters"].phi0_rad[direct])
    assert errors.max() < 0.02 * 2 * np.pi
    # the mesh's other phases: as the calibration's convention pins what power meters cannot see
    _, specs = load_specs(instruments)
    names = list(specs[0].names)
    channels = [r.channel for r in specs[0].phases.refs]
    blind = blind_directions(MeshSweeps(MeshOptics(4, names), np.zeros(16), PATTERNS))
    pins = gauge_pins(blind, names)
    assert [names[i] for i in pins] == ["gamma[0]", "gamma[1]", "gamma[2]", "gamma[3]"]
    assert all(laws[channels[i]].pinned for i in pins)
    truth = pin(chip.laws["heaters"].phi0_rad[channels], blind, pins)
    errors = circular([laws[c].phi0_rad for c in channels], truth)
    assert errors.max() < 0.02 * 2 * np.pi
    assert len(list(plots.glob("heaters-*.png"))) == 20
    assert "wrote" in result.stdout


def test_the_blind_directions_are_the_input_phase_the_series_pairs_and_the_output_phase() -> None:
    names = mesh_phase_names(4)
    blind = blind_directions(MeshSweeps(MeshOptics(4, names), np.zeros(16), PATTERNS))
    assert blind.shape == (16, 4)
    index = {n: i for i, n in enumerate(names)}

    def direction(**shifts: float) -> np.ndarray:
        v = np.zeros(16)
        for name, value in shifts.items():
            v[index[name.replace("_", "[", 1).replace("_", ",") + "]"]] = value
        return v

    common_input = direction(gamma_0=1, gamma_1=1, gamma_2=1, gamma_3=1)
    series = direction(phi_0_0=1, gamma_0=-1)
    common_output = direction(phi_0_1=1, phi_1_0=1, phi_2_0=1, gamma_3=1)
    for v in (common_input, series, common_output):
        np.testing.assert_allclose(blind @ (blind.T @ v), v, atol=1e-6)  # in the blind space


def test_a_sinusoid_fit_ignores_a_few_bad_readings() -> None:
    u = np.linspace(0, 36, 24)
    clean = 1.0 + 0.5 * np.cos(0.3 * u + 1.0)
    readings = clean + 1e-3 * np.random.default_rng(0).standard_normal(24)
    readings[[5, 17]] += 0.4  # two glitches
    fit = fit_sinusoids(u, readings[:, None])
    assert fit.k == pytest.approx(0.3, rel=2e-3)
    assert np.angle(fit.coefficient[0]) == pytest.approx(1.0, abs=5e-3)


def test_calibrate_never_overwrites_a_calibration_without_force(emulated: EmulatedRig, tmp_path: Path) -> None:
    instruments = live_instruments_file(emulated, tmp_path)
    before = (tmp_path / "calibration.yaml").read_text()
    result = CliRunner().invoke(app, ["calibrate", "--instruments", str(instruments)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {tmp_path / 'calibration.yaml'}: exists; runs record which calibration "
                                     "they used, so it is not overwritten: give --force to overwrite it, "
                                     "--timestamped to write a new file beside it, or --output FILE")
    assert (tmp_path / "calibration.yaml").read_text() == before
    assert emulated.servers["heaters"].commands == 0  # refused before any instrument was opened


def test_calibrate_timestamped_writes_a_new_file_beside_the_named_one(
    start_rig: Callable[..., EmulatedRig], tmp_path: Path
) -> None:
    emulated = start_rig(chip={"noise": 1e-3, "seed": 5})
    instruments = live_instruments_file(emulated, tmp_path)
    before = (tmp_path / "calibration.yaml").read_text()
    result = CliRunner().invoke(app, ["calibrate", "--instruments", str(instruments), "--timestamped",
                                      "--points", "8", "--starts", "1"])
    assert result.exit_code == 0, result.stderr
    (new,) = tmp_path.glob("calibration-*.yaml")
    assert re.fullmatch(r"calibration-\d{8}-\d{6}\.yaml", new.name)
    assert load_calibration(new).channels["heaters"]
    assert (tmp_path / "calibration.yaml").read_text() == before
    assert f"name it in {instruments}: calibration: {new.name}" in result.stdout


def test_calibrate_refuses_sweeps_over_the_power_budget(emulated: EmulatedRig, tmp_path: Path) -> None:
    instruments = live_instruments_file(emulated, tmp_path, power_budget_W=0.1)
    result = CliRunner().invoke(app, ["calibrate", "--instruments", str(instruments), "--force"])
    assert result.exit_code == 2
    assert "power_budget_W: layers[0]'s calibration sweeps may draw 0." in result.stderr
    assert not (tmp_path / "calibration.yaml").read_text().count("residual")  # the file was not rewritten
    doc = yaml.safe_load((tmp_path / "calibration.yaml").read_text())
    assert doc["channels"]


@pytest.mark.parametrize("modes", [2, 3, 4, 5])
def test_every_decomposition_rebuilds_the_mesh_up_to_output_phases(modes: int) -> None:
    names = mesh_phase_names(modes)
    optics = MeshOptics(modes, names)
    u = optics.matrices(np.random.default_rng(modes).uniform(0, 2 * np.pi, len(names)))[0]
    for flips in (0, 1, 2 ** (modes * (modes - 1) // 2) - 1):
        phases = decompose(u, flips)
        rebuilt = optics.matrices(np.array([phases.get(n, 0.0) for n in names]))[0]
        ratio = u / rebuilt  # rebuilt @ D = u: every column (an output) a single phase factor
        np.testing.assert_allclose(np.abs(ratio), 1.0, atol=1e-9)
        np.testing.assert_allclose(ratio / ratio[:1, :], 1.0, atol=1e-9)


def test_the_transfer_matrix_follows_from_the_input_phase_sweeps() -> None:
    names = mesh_phase_names(4)
    optics = MeshOptics(4, names)
    phases = np.random.default_rng(1).uniform(0, 2 * np.pi, 16)
    u = optics.matrices(phases)[0]
    fields = PATTERNS * np.exp(1j * np.array([0.3, 1.1, 2.0, 0.7]))[:, None]  # modulators' own phases
    sweeps = MeshSweeps(optics, np.zeros(16), fields)
    a, c = sweeps.sinusoids(phases, np.array([1.0, 0.8, 1.2, 0.9]), np.array([1.0, 1.1, 0.9, 1.05]))
    gammas = [names.index(f"gamma[{m}]") for m in range(4)]
    turned = c[gammas] * np.exp(1j * phases[gammas])[:, None, None]  # as measured against V^2
    found = nearest_unitary(transfer_from_gamma_sweeps(a[gammas], turned, fields))
    ratio = found / u.T  # found is (port, mode)
    np.testing.assert_allclose(np.abs(ratio), 1.0, atol=1e-9)
    np.testing.assert_allclose(ratio / ratio[:, :1], 1.0, atol=1e-9)

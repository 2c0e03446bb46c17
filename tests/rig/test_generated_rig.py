"""Emulated rigs of any size (``instruments emulated-rig``), through pyvisa-py sockets and the real
drivers: the files load, the calibration file is the chip's truth, Qontrol lines can be pipelined
and several meters read at once, and a rig starts from a given transfer matrix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from drivers.emulated.rig import EmulatedRig
from drivers.emulated.server import Fault
from drivers.instruments.qontrol import QontrolError
from ffzero_lab.cli.app import app
from ffzero_lab.photonics.decomposition import decompose
from ffzero_lab.photonics.design import MeshOptics, mesh_phase_names
from ffzero_lab.rig import PowerBudgetError, build_rig_network, load_specs
from ffzero_lab.rig.build import haar_phases

from .conftest import opened_rig, served_generated_rig

N = 12  # modes of the served rig's meshes


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EmulatedRig, Path]]:
    """A generated 2 x 12-mode rig (two 8-port meters per mesh) on free ports; the instruments
    file pointing at it."""
    with served_generated_rig(tmp_path, N, 2, seed=3, pipeline=4) as served:
        yield served


def test_layout_of_a_generated_rig(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["instruments", "emulated-rig", "--modes", "8", "--layers", "2", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    rig, specs = load_specs(tmp_path / "instruments.yaml")
    assert sorted(rig.instruments) == ["mesh0", "mesh1", "meter0_0", "meter1_0"]
    assert rig.instruments["mesh0"].channels.count == 8 * 8 + 8  # phases, then modulators
    assert [len(s.names) for s in specs] == [64, 64]
    assert specs[1].detectors[7].instrument == "meter1_0" and specs[1].detectors[7].port == 8
    assert "NOT measured" in (tmp_path / "calibration.yaml").read_text().splitlines()[1]


def test_the_calibration_file_is_the_chip_and_training_sees_it(served: tuple[EmulatedRig, Path]) -> None:
    rig, instruments = served
    config, specs = load_specs(instruments)
    network = build_rig_network(config, specs, seed=0)
    try:
        layer = network.layers[1]
        settings = np.random.default_rng(1).uniform(0, 2 * np.pi, (2, len(specs[1].names)))
        inputs = np.random.default_rng(2).uniform(0, 1, (3, N))
        _, taps = layer.propagate(inputs, settings)
        optics = MeshOptics(N, list(specs[1].names))
        psi = 2 * np.arcsin(inputs)
        fields = np.sqrt(1e-3 / N) * (np.exp(1j * psi) - 1) / 2  # one-armed modulators
        expected = optics.port_powers(settings, fields)
        np.testing.assert_allclose(taps, expected, rtol=0, atol=2e-3 * expected.max())  # 0.1 mV voltage grid
        assert network.rig.counters.readings == 2 * 6  # both meters (asked at once) for each of 6 inputs
    finally:
        network.safe_state()
        network.close()
    assert all((h.volts == 0).all() for h in rig.heaters.values())


def test_a_rig_can_start_from_a_given_transfer_matrix(served: tuple[EmulatedRig, Path]) -> None:
    _, instruments = served
    config, specs = load_specs(instruments)
    u = MeshOptics(N, mesh_phase_names(N)).matrices(np.random.default_rng(4).uniform(0, 2 * np.pi, N * N))[0]
    initial = [np.array([decompose(u).get(n, 0.0) for n in spec.names]) for spec in specs]
    network = build_rig_network(config, specs, seed=0, initial=initial)
    try:
        x = np.random.default_rng(5).uniform(0, 1, (2, N))
        _, taps = network.layers[0].forward(x)
        psi = 2 * np.arcsin(x)
        fields = np.sqrt(1e-3 / N) * (np.exp(1j * psi) - 1) / 2
        np.testing.assert_allclose(taps, np.abs(fields @ u) ** 2, rtol=0, atol=2e-3 * taps.max())
        with pytest.raises(ValueError, match="initial phases"):
            build_rig_network(config, specs, seed=0, initial=initial[:1])
    finally:
        network.safe_state()
        network.close()


def test_a_pipelined_error_reply_is_raised_after_every_reply_is_read(served: tuple[EmulatedRig, Path]) -> None:
    rig, instruments = served
    with opened_rig(instruments) as (network, _):
        driver = network.rig.drivers["mesh0"]
        assert driver.settings.pipeline == 4 and driver.settings.vector_max == 32
        rig.inject("mesh0", Fault("VVEC32=*", reply="E01:32", count=1))
        with pytest.raises(QontrolError, match=r"channel 32: error E01"):
            driver.set_voltages_V(np.arange(80), np.full(80, 1.0))  # 3 lines in one batch, the 2nd refused
        driver.set_voltages_V(np.arange(80), np.full(80, 1.5))  # the link is still in step
        np.testing.assert_allclose(driver.read_voltages_V(np.arange(80)), 1.5)


def test_the_generator_is_found_by_entry_point_or_dotted_path(tmp_path: Path) -> None:
    dotted = CliRunner().invoke(app, ["instruments", "emulated-rig", "--modes", "2", "--layers", "1", "-o",
                                      str(tmp_path), "--generator", "drivers.emulated.generate:write_emulated_rig"])
    assert dotted.exit_code == 0, dotted.output
    unknown = CliRunner().invoke(app, ["instruments", "emulated-rig", "-o", str(tmp_path), "--generator", "nope"])
    assert unknown.exit_code == 2 and "unknown rig generator 'nope' (installed: emulated" in unknown.output


def test_meshes_start_haar_random_unless_told_otherwise(served: tuple[EmulatedRig, Path]) -> None:
    _, instruments = served
    config, specs = load_specs(instruments)
    spec = specs[0]
    optics = MeshOptics(N, list(spec.names))

    def far_power(phases: np.ndarray) -> float:
        """Power a mesh carries from the top half of its inputs to the bottom half of its outputs (of N / 2)."""
        u = optics.matrices(phases)[0]
        return float((np.abs(u[: N // 2, N // 2:]) ** 2).sum() / (N // 2))  # rows: inputs

    rng = np.random.default_rng(0)
    haar = np.mean([far_power(haar_phases(spec, rng)) for _ in range(30)])
    uniform = np.mean([far_power(rng.uniform(0, 2 * np.pi, len(spec.names))) for _ in range(30)])
    assert abs(haar - 0.5) < 0.05  # a Haar-random unitary spreads every input over every output
    assert uniform < 0.35  # uniform phases leave a band
    network = build_rig_network(config, specs, seed=7)
    try:
        expected = haar_phases(spec, np.random.default_rng(np.random.SeedSequence(7).spawn(2)[0]))
        np.testing.assert_array_equal(network.layers[0].get_parameters(), expected)
    finally:
        network.close()
    network = build_rig_network(config, specs, seed=7, init="uniform")
    try:
        assert far_power(network.layers[0].get_parameters()) < 0.45
    finally:
        network.close()


def test_the_heater_drivers_of_a_rig_share_one_power_budget(served: tuple[EmulatedRig, Path]) -> None:
    rig, instruments = served
    with opened_rig(instruments) as (network, _):
        first, second = network.rig.drivers["mesh0"], network.rig.drivers["mesh1"]
        assert first.budget is second.budget is network.rig.budget
        first.set_voltages_V(np.arange(4), np.full(4, 2.0))  # 4 x 4 V^2 / 500 ohm = 32 mW on mesh0
        assert second.budget.others_W("mesh1") == pytest.approx(0.032)
        network.rig.budget.budget_W = 0.040  # mesh1 alone could draw 32 mW more, the rig not
        with pytest.raises(PowerBudgetError, match="mesh1"):
            second.set_voltages_V(np.arange(4), np.full(4, 2.0))  # asked of the driver, not through the rig
        np.testing.assert_array_equal(rig.heaters["mesh1"].volts[:4], 0.0)  # nothing was written

"""The hardware layer against the emulated rig: real drivers, pyvisa-py, 127.0.0.1 sockets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.emulated.rig import EmulatedRig
from ffzero_lab.config.protocol import parse_protocol
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.photonics.design import MeshOptics, modulator_field, modulator_phase
from ffzero_lab.rig import (
    InputRangeError,
    LimitError,
    build_rig_network,
    check_setpoints,
    load_specs,
)
from ffzero_lab.rig.plan import plan
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare

from .conftest import corners_data, live_instruments_file


def unit_inputs(batch: int, modes: int = 4, seed: int = 0) -> np.ndarray:
    x = np.abs(np.random.default_rng(seed).standard_normal((batch, modes)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_plan_holds_each_setting_and_sweeps_the_inputs_in_a_serpentine() -> None:
    assert list(plan(3, 2)) == [(0, 0), (0, 1), (1, 1), (1, 0), (2, 0), (2, 1)]


def test_propagate_reads_what_the_chip_does_and_settles_once_per_setting(emulated: EmulatedRig, tmp_path: Path) -> None:
    rig, specs = load_specs(live_instruments_file(emulated, tmp_path))
    network = build_rig_network(rig, specs, seed=3)
    try:
        layer, counters = network.layers[0], network.rig.counters
        x = unit_inputs(5)
        theta = layer.get_parameters()
        settings = np.stack([theta, theta + 0.3, theta - 0.2])
        outputs, taps = layer.propagate(x, settings)
        assert taps.shape == outputs.shape == (3, 5, 4)
        assert counters.phase_settles == 3
        assert counters.input_settles == 3 * 5 - 2  # the serpentine saves a write between settings
        assert counters.readings == 15
        # the chip's own answer: its mesh at the requested phases, inputs through the modulators
        optics = MeshOptics(4, layer.spec.names)
        fields = np.sqrt(1e-3 / 4) * modulator_field(modulator_phase(x))
        expected = optics.port_powers(layer.bounds.apply(settings), fields)
        np.testing.assert_allclose(taps, expected, rtol=2e-3, atol=1e-9)  # 1e-4 V steps of the DAC
        np.testing.assert_allclose((outputs**2).sum(-1), 1.0)
        np.testing.assert_array_equal(layer.get_parameters(), theta)  # parameters unchanged

        layer.set_parameters(theta + 0.1)  # the write-back: one more settle
        assert counters.phase_settles == 4
        layer.forward(x[:1])  # the heaters already hold the parameters: no settle
        assert counters.phase_settles == 4
        assert emulated.heaters["heaters"].volts[:16].max() > 0
        network.safe_state()
        np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)
    finally:
        network.close()


def test_a_dd_step_settles_the_heaters_2k_plus_1_times(emulated: EmulatedRig, tmp_path: Path) -> None:
    proto = parse_protocol({
        "seed": 1, "data": {"set": "corners", "train_limit": 24, "test_limit": 8},
        "network": {"layers": 1, "width": 4}, "goodness": {"prototype_steps": 10},
        "train": {"epochs": 1, "batch_size": 8, "directions": 3, "eps": 0.05}, "record": {"measurements": False},
    }, "protocol")
    rig, specs = load_specs(live_instruments_file(emulated, tmp_path))
    network = build_rig_network(rig, specs, seed=0)
    try:
        prepared = prepare(proto, "protocol", corners_data(tmp_path), network)
        Orchestrator(proto, network, prepared.dataset, [], prepared.seeds).run()
        assert network.rig.counters.phase_settles == 3 * (2 * 3 + 1)  # 3 steps of 2K + 1
    finally:
        network.safe_state()
        network.close()


def test_inputs_the_modulators_cannot_set_are_refused(emulated: EmulatedRig, tmp_path: Path) -> None:
    rig, specs = load_specs(live_instruments_file(emulated, tmp_path))
    network = build_rig_network(rig, specs, seed=0)
    try:
        layer = network.layers[0]
        with pytest.raises(InputRangeError, match=r"layers\[0\]: input 1.5 \(mode 2\) is outside \[0, 1\]"):
            layer.propagate(np.array([[0.0, 0.5, 1.5, 0.0]]), layer.get_parameters()[None])
        assert network.rig.counters.phase_settles == 0  # refused before anything was written
    finally:
        network.close()


def test_preflight_names_the_channel_that_cannot_reach_a_whole_turn(emulated: EmulatedRig, tmp_path: Path) -> None:
    path = live_instruments_file(emulated, tmp_path, channel_overrides={5: {"voltage_max_V": 3.0}})
    rig, specs = load_specs(path)
    with pytest.raises(ConfigError, match=r"instruments.live.yaml: layers\[0\].phases.phi\[1,0\]: instrument 'heaters' "
                                          r"channel 5 may need 4.\d+ V for any phase .* above voltage_max_V = 3 V"):
        check_setpoints(rig, specs, str(path))


def test_preflight_checks_the_worst_case_against_the_power_budget(emulated: EmulatedRig, tmp_path: Path) -> None:
    rig, specs = load_specs(live_instruments_file(emulated, tmp_path, power_budget_W=0.5))
    with pytest.raises(ConfigError, match=r"power_budget_W: every heater at its highest set-point draws 0.\d+ W, "
                                          r"above the budget 0.5 W \(the most: instrument 'heaters' channel \d+"):
        check_setpoints(rig, specs, "rig")
    # the data's own inputs can need less than any input would
    x = unit_inputs(50)
    full = check_setpoints(rig.model_copy(update={"power_budget_W": 1.0}), specs, "rig")
    data = check_setpoints(rig.model_copy(update={"power_budget_W": 1.0}), specs, "rig", x)
    assert data.worst_power_W <= full.worst_power_W


def test_the_rig_budget_is_checked_before_a_write(emulated: EmulatedRig, tmp_path: Path) -> None:
    rig, specs = load_specs(live_instruments_file(emulated, tmp_path, power_budget_W=0.2))
    network = build_rig_network(rig, specs, seed=0)
    try:
        theta = network.layers[0].get_parameters()
        with pytest.raises(LimitError, match="power_budget_W"):
            network.layers[0].set_parameters(theta)
        np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)  # nothing was written
    finally:
        network.close()

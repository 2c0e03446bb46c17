"""Optically cascaded meshes (``input: optical``): one chip whose later meshes are fed by the light of
the mesh before, through the chip's electro-optic activation, trained through pyvisa-py sockets
and the real drivers against a generated emulated rig."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from drivers.emulated.chip import ActivationSettings
from drivers.emulated.generate import write_emulated_rig
from drivers.emulated.rig import EmulatedRig
from ffzero_lab.calibration.procedure import run_calibration
from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.photonics.activation import ElectroOpticActivation
from ffzero_lab.photonics.design import MeshOptics, modulator_field
from ffzero_lab.rig import build_rig_network, load_rig, load_specs

from .conftest import corners_data, served_generated_rig

N = 4
#: A strong activation, so that a test fails if it is left out (the quickstart's is gentler).
ACTIVATION = ElectroOpticActivation(alpha=0.2, gain=3.0, bias_phase=0.4)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EmulatedRig, Path]]:
    """A generated 2 x 4-mode optically joined rig on free ports; the instruments file for it."""
    with served_generated_rig(tmp_path, N, 2, seed=5, join="optical", activation=ACTIVATION) as served:
        yield served


def chip_model(specs, phases0: np.ndarray, phases1: np.ndarray, inputs: np.ndarray, power_W: float = 1e-3):
    """Expected readings ``(S, B, N)`` of both meshes, from the nominal design (settings ``(S, n)``)."""
    act = ActivationSettings(alpha=ACTIVATION.alpha, bias_phase_rad=ACTIVATION.bias_phase,
                             gain_rad_per_W=ACTIVATION.gain * N / power_W)
    fields = np.sqrt(power_W / N) * modulator_field(2 * np.arcsin(inputs))  # (B, N)
    z0 = np.einsum("smn,bm->sbn", MeshOptics(N, list(specs[0].names)).matrices(phases0), fields)
    z1 = np.einsum("smn,sbm->sbn", MeshOptics(N, list(specs[1].names)).matrices(phases1), act(z0))
    return act.alpha * np.abs(z0) ** 2, np.abs(z1) ** 2


def test_an_optical_rig_has_one_set_of_modulators(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["instruments", "emulated-rig", "--modes", "6", "--layers", "3",
                                      "--join", "optical", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rig, specs = load_specs(tmp_path / "instruments.yaml")
    assert [layer.input for layer in rig.layers] == ["modulators", "optical", "optical"]
    assert [rig.instruments[f"mesh{i}"].channels.count for i in range(3)] == [36 + 6, 36, 36]
    assert [len(s.modulators) for s in specs] == [6, 0, 0] and [s.optical for s in specs] == [False, True, True]
    bad = CliRunner().invoke(app, ["instruments", "emulated-rig", "--join", "wireless", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--join" in bad.output


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda doc: doc["layers"][0].update(input="optical"), "layers[0].input"),
        (
            lambda doc: doc["layers"][1].update(modulators={0: {"instrument": "mesh0", "channel": 0}}),
            "layers[1].modulators",
        ),
        (lambda doc: doc["layers"][1].update(modes=3), "layers[1].modes"),
    ],
)
def test_an_impossible_optical_join_is_refused_naming_the_field(tmp_path: Path, change, field: str) -> None:
    paths = write_emulated_rig(tmp_path, N, 2, join="optical")
    doc = yaml.safe_load(paths["instruments"].read_text())
    change(doc)
    paths["instruments"].write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as error:
        load_rig(paths["instruments"])
    assert field in str(error.value)


def test_the_second_mesh_sees_the_first_meshs_light_through_the_activation(served) -> None:
    rig, instruments = served
    config, specs = load_specs(instruments)
    network = build_rig_network(config, specs, seed=0)
    try:
        first, second = network.layers
        assert second.source is first and first.passes_light and not second.passes_light
        inputs = np.random.default_rng(2).uniform(0, 1, (3, N))
        settings = np.random.default_rng(1).uniform(0, 2 * np.pi, (2, len(specs[1].names)))
        outputs, taps = second.propagate(inputs, settings)  # the first mesh holds its own phases
        tapped0, expected1 = chip_model(specs, np.repeat(first.get_parameters()[None], 2, 0), settings, inputs)
        np.testing.assert_allclose(taps, expected1, rtol=0, atol=2e-3 * expected1.max())  # 0.1 mV voltage grid
        passed, taps0 = first.propagate(inputs, first.get_parameters()[None])
        np.testing.assert_allclose(taps0[0], tapped0[0], rtol=0, atol=2e-3 * tapped0.max())
        np.testing.assert_array_equal(passed[0], inputs)  # the light goes on; its stand-in is the input
        readings = network.rig.counters.readings
        np.testing.assert_array_equal(network.layer_inputs(1, inputs), inputs)
        assert network.rig.counters.readings == readings  # nothing measured for that
    finally:
        network.safe_state()
        network.close()
    assert all((h.volts == 0).all() for h in rig.heaters.values())


def test_a_network_evaluated_as_a_whole_writes_both_meshes_per_setting(served) -> None:
    _, instruments = served
    config, specs = load_specs(instruments)
    network = build_rig_network(config, specs, seed=0)
    try:
        rng = np.random.default_rng(3)
        s0, s1 = (rng.uniform(0, 2 * np.pi, (3, len(s.names))) for s in specs)
        inputs = rng.uniform(0, 1, (2, N))
        settles = network.rig.counters.phase_settles
        taps = network.propagate_settings(inputs, [s0, s1])
        assert network.rig.counters.phase_settles - settles == 3  # both meshes in one settle per setting
        expected = chip_model(specs, s0, s1, inputs)[1]
        np.testing.assert_allclose(taps, expected, rtol=0, atol=2e-3 * expected.max())
    finally:
        network.safe_state()
        network.close()


def test_run_trains_an_optically_joined_chip(served, tmp_path: Path) -> None:
    rig, instruments = served
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(yaml.safe_dump({
        "name": "optical", "seed": 0, "method": "ff-dd",
        "data": {"set": "corners", "encoding": "amplitude", "train_limit": 64, "test_limit": 64},
        "network": {"layers": 2, "width": 4},
        "train": {"epochs": 2, "batch_size": 16, "optimizer": "adam", "lr": 0.1, "directions": 2, "eps": 0.05},
        "goodness": {"centre": True, "prototype_steps": 50}}))
    result = CliRunner().invoke(app, ["run", str(protocol), "--instruments", str(instruments), "--runs-dir",
                                      str(tmp_path / "runs"), "--data-dir", str(corners_data(tmp_path)),
                                      "--quiet", "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(summary["layer_accuracy"]) == 2
    assert all((h.volts == 0).all() for h in rig.heaters.values())


def test_calibrate_skips_an_optically_fed_mesh_and_says_so(served, tmp_path: Path) -> None:
    rig, instruments = served
    lines: list[str] = []
    run_calibration(load_rig(instruments), "instruments.yaml", tmp_path / "out.yaml", points=8, starts=4,
                    progress=lines.append)
    assert any("layers[1] is fed optically" in line and "not calibrated" in line for line in lines)
    calibrated = yaml.safe_load((tmp_path / "out.yaml").read_text())["channels"]
    assert sorted(calibrated) == ["mesh0"] and len(calibrated["mesh0"]) == N * N + N  # its phases and modulators
    assert all((h.volts == 0).all() for h in rig.heaters.values())


def test_a_served_optical_rig_is_evaluated_as_a_whole_by_the_server(served) -> None:
    """Through serve / run --rig, BP+DD's whole-network evaluation and layer_inputs are the served
    network's own: a client going layer by layer would leave the first mesh at its current phases."""
    import threading

    from ffzero_lab.live.remote import RemoteNetwork, RigServer
    from tests.live.test_remote import free_port

    _, instruments = served
    config, specs = load_specs(instruments)
    network = build_rig_network(config, specs, seed=0)
    address = f"tcp://127.0.0.1:{free_port()}"
    server = RigServer(network, address, lease_s=30.0)
    thread = threading.Thread(target=server.serve, kwargs={"stop_after_s": 4.0})
    thread.start()
    try:
        remote = RemoteNetwork(address, timeout_s=10.0)
        rng = np.random.default_rng(6)
        s0, s1 = (rng.uniform(0, 2 * np.pi, (2, len(s.names))) for s in specs)
        inputs = rng.uniform(0, 1, (3, N))
        taps = remote.propagate_settings(inputs, [s0, s1])
        expected = chip_model(specs, s0, s1, inputs)[1]
        np.testing.assert_allclose(taps, expected, rtol=0, atol=2e-3 * expected.max())
        np.testing.assert_array_equal(remote.layer_inputs(1, inputs), inputs)
        remote.safe_state()
    finally:
        thread.join()
        server.close()
        network.close()


def test_a_mixed_chain_optical_then_electrical(tmp_path: Path) -> None:
    """mesh0 (modulators) -> mesh1 (optical) -> mesh2 (its own modulators, set from mesh1's detectors)."""
    def make_mesh1_optical(doc: dict) -> None:
        doc["layers"][1]["input"] = "optical"
        del doc["layers"][1]["modulators"]

    with served_generated_rig(tmp_path, N, 3, edit=make_mesh1_optical, seed=5, activation=ACTIVATION) as (_, live):
        config, specs = load_specs(live)
        network = build_rig_network(config, specs, seed=0)
        try:
            assert [(m.passes_light, m.source.spec.index) for m in network.layers] == [
                (True, 0),
                (False, 0),
                (False, 2),
            ]
            rng = np.random.default_rng(3)
            settings = [rng.uniform(0, 2 * np.pi, (3, len(s.names))) for s in specs]
            x = rng.uniform(0, 1, (2, N))
            _, taps1 = chip_model(specs, settings[0], settings[1], x)
            amplitudes = np.sqrt(taps1 / taps1.sum(axis=-1, keepdims=True))  # what mesh1's detectors pass on
            fields = np.sqrt(1e-3 / N) * modulator_field(2 * np.arcsin(amplitudes))
            expected = np.abs(np.einsum("smn,sbm->sbn", MeshOptics(N, list(specs[2].names)).matrices(settings[2]),
                                        fields)) ** 2
            got = network.propagate_settings(x, settings)
            np.testing.assert_allclose(got, expected, rtol=0, atol=3e-3 * expected.max())
            current = [m.get_parameters()[None] for m in network.layers]
            _, now1 = chip_model(specs, current[0], current[1], x)
            np.testing.assert_allclose(network.layer_inputs(2, x), np.sqrt(now1 / now1.sum(-1, keepdims=True))[0],
                                       rtol=0, atol=3e-3)
        finally:
            network.safe_state()
            network.close()

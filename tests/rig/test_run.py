"""``ffzero-lab run --instruments``: training through pyvisa-py, sockets and the real drivers against
the emulated rig, and what happens when the instruments misbehave."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from drivers.emulated.rig import EmulatedRig
from drivers.emulated.server import Fault
from ffzero_lab.cli.app import app
from ffzero_lab.store.runstore import RunStore

from .conftest import ROOT, corners_data, live_instruments_file

#: A 4-mode task: 2 x 2 images whose brightest pixel is the class (conftest.corners_data).
PROTOCOL = {
    "name": "rig-4-mode", "seed": 0, "method": "ff-dd",
    "data": {"set": "corners", "encoding": "amplitude", "train_limit": 128, "test_limit": 128},
    "network": {"layers": 1, "width": 4},
    "train": {"epochs": 4, "batch_size": 16, "optimizer": "adam", "lr": 0.1, "directions": 2, "eps": 0.05},
    "goodness": {"centre": True, "prototype_steps": 100},
}


def protocol_file(folder: Path, **train: object) -> Path:
    doc = json.loads(json.dumps(PROTOCOL))
    doc["train"].update(train)
    path = folder / "protocol.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(protocol: Path, instruments: Path, folder: Path, *extra: str):
    return CliRunner().invoke(app, ["run", str(protocol), "--instruments", str(instruments), "--runs-dir",
                                    str(folder / "runs"), "--data-dir", str(corners_data(folder)), "--quiet", *extra])


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_run_trains_through_the_drivers_against_the_emulated_rig(emulated: EmulatedRig, tmp_path: Path) -> None:
    result = run(protocol_file(tmp_path), live_instruments_file(emulated, tmp_path), tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["test_accuracy"] > 0.6  # chance is 0.25; the untrained mesh scores about 0.2
    assert summary["evaluations"] == 4 * 8 * 2 * 2 * 16 + 4 * 128 + 128
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)  # left safe
    store = RunStore(tmp_path / "runs")
    try:
        assert store.summary(summary["run_id"]).status == "complete"
        losses = [e["loss"] for e in store.epochs(summary["run_id"])]
        assert losses[-1] < 0.7 * losses[0]
        assert store.array(summary["run_id"], "device/0/phase_k_rad_per_V2").shape == (16,)
    finally:
        store.close()


def test_run_needs_exactly_one_rig(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(protocol_file(tmp_path))])
    assert result.exit_code == 2
    assert "--rig ADDRESS or --instruments FILE (one of them)" in result.stderr


def test_a_set_point_out_of_reach_stops_the_run_before_any_write(emulated: EmulatedRig, tmp_path: Path) -> None:
    instruments = live_instruments_file(emulated, tmp_path, channel_overrides={18: {"voltage_max_V": 1.0}})
    result = run(protocol_file(tmp_path), instruments, tmp_path)
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert "layers[0].modulators[2]: instrument 'heaters' channel 18 may need" in line
    assert "for the protocol's inputs" in line and "above voltage_max_V = 1 V" in line
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)


def test_transient_faults_are_retried_and_the_run_completes(
    start_rig: Callable[..., EmulatedRig], tmp_path: Path
) -> None:
    emulated = start_rig(instruments={"heaters": {"faults": [
        {"match": "VVEC16=*", "reply": "E15:16", "count": 2},  # communication errors
        {"match": "VVEC0=*", "silent": True, "count": 1},  # a timeout
    ]}, "meter": {"faults": [{"match": ":FETC:POW:ALL?", "drop": True, "count": 1}]}})  # a dropped connection
    instruments = live_instruments_file(emulated, tmp_path)
    doc = yaml.safe_load(instruments.read_text())
    doc["instruments"]["heaters"]["timeout_ms"] = 200
    instruments.write_text(yaml.safe_dump(doc))
    result = run(protocol_file(tmp_path, epochs=1), instruments, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert all(f.count == 0 for server in emulated.servers.values() for f in server.faults)  # every fault hit
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (("meter", Fault(":FETC:POW:ALL?", silent=True)),
         r"error: instrument 'meter': no reply from TCPIP0::127.0.0.1::\d+::SOCKET within 300 ms "
         r"\(command ':FETC:POW:ALL\?'\) \(the run is recorded as failed"),
        (("heaters", Fault("VVEC16=*", reply="E01:17", count=1)),
         r"error: instrument 'heaters' channel 17: error E01 \(over-voltage\) \(command 'VVEC16=[0-9.,]+'\)"),
    ],
    ids=["meter-silent", "over-voltage-reply"],
)
def test_a_lasting_fault_stops_the_run_with_one_line_and_the_heaters_safe(
    emulated: EmulatedRig, tmp_path: Path, fault: tuple[str, Fault], expected: str
) -> None:
    import re

    instruments = live_instruments_file(emulated, tmp_path, retries=1)
    doc = yaml.safe_load(instruments.read_text())
    doc["instruments"]["meter"]["timeout_ms"] = 300
    instruments.write_text(yaml.safe_dump(doc))
    protocol = protocol_file(tmp_path, epochs=1)
    emulated.inject(*fault)
    result = run(protocol, instruments, tmp_path)
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert re.search(expected, line), line
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)


def test_two_meshes_train_one_after_the_other(start_rig: Callable[..., EmulatedRig], tmp_path: Path) -> None:
    """A rig of two 4-mode meshes, each with its own modulators and detectors: the second sees
    what the first's detectors read, as unit-power amplitudes."""
    doc = yaml.safe_load((ROOT / "instruments.emulated.yaml").read_text())
    doc["power_budget_W"] = 2.0
    doc["instruments"]["heaters"]["channels"]["count"] = 40
    doc["instruments"]["heaters"]["channels"]["overrides"].update(
        {c: {"voltage_max_V": 4.0, "resistance_ohm": 350.0} for c in range(36, 40)})
    second = json.loads(json.dumps(doc["layers"][0]))
    for group in ("phases", "modulators"):
        for ref in second[group].values():
            ref["channel"] += 20
    second["detectors"] = {mode: {"instrument": "meter", "port": mode + 5} for mode in range(4)}
    second["name"] = "mesh1"
    doc["layers"].append(second)
    (tmp_path / "instruments.emulated.yaml").write_text(yaml.safe_dump(doc))
    rig_doc = yaml.safe_load((ROOT / "rig.emulated.yaml").read_text())
    rig_doc["chip"]["noise"] = 0.0
    rig_doc["instruments"] = {"meter": {"model": "N7745A"}}
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump(rig_doc))
    with EmulatedRig.from_file(tmp_path / "rig.yaml", any_port=True) as emulated:
        instruments = live_instruments_file(emulated, tmp_path)
        result = run(protocol_file(tmp_path, epochs=1), instruments, tmp_path, "--json")
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert len(summary["layer_accuracy"]) == 2
        # layer 1's inputs: the training and test sets once through mesh 0
        assert summary["evaluations"] == 2 * (8 * 2 * 2 * 16 + 128) + (128 + 128) + 2 * 128
        np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)


def test_a_failed_rig_run_resumes_on_the_instruments(emulated: EmulatedRig, tmp_path: Path) -> None:
    instruments = live_instruments_file(emulated, tmp_path, retries=0)
    doc = yaml.safe_load(instruments.read_text())
    doc["instruments"]["meter"]["timeout_ms"] = 200
    instruments.write_text(yaml.safe_dump(doc))
    protocol = protocol_file(tmp_path, epochs=2)
    emulated.inject("meter", Fault(":FETC:POW:ALL?", silent=True, count=1, after=900))  # in the second epoch (of 1,408)
    failed = run(protocol, instruments, tmp_path, "--json")
    assert failed.exit_code == 2 and "no reply" in failed.stderr
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)
    runs = ["--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path), "--quiet"]
    refused = CliRunner().invoke(app, ["resume", "1", *runs])
    assert refused.exit_code == 2 and "--rig ADDRESS (and --keys DIR) or --instruments FILE" in refused.stderr
    resumed = CliRunner().invoke(app, ["resume", "1", "--instruments", str(instruments), "--json", *runs])
    assert resumed.exit_code == 0, resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["run_id"] == 1 and summary["evaluations"] == 2 * 8 * 2 * 2 * 16 + 2 * 128 + 128
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda doc: doc["instruments"]["heaters"]["channels"]["overrides"].update({3: {"voltage_max_V": 15.0}}),
         r"instruments\.heaters: channel 3: voltage_max_V 15\.0 > instrument full scale 12\.0 V"),
        (lambda doc: doc["instruments"]["heaters"]["channels"].update(count=40),
         r"instruments\.heaters: .*40.*24"),
    ],
    ids=["above-full-scale", "more-channels-than-the-instrument"],
)
def test_run_makes_the_instruments_check_before_writing_anything(
    emulated: EmulatedRig, tmp_path: Path, edit: Callable[[dict], None], expected: str
) -> None:
    import re

    instruments = live_instruments_file(emulated, tmp_path)
    doc = yaml.safe_load(instruments.read_text())
    edit(doc)
    instruments.write_text(yaml.safe_dump(doc))
    before = emulated.heaters["heaters"].version
    commands = {name: server.commands for name, server in emulated.servers.items()}
    result = run(protocol_file(tmp_path, epochs=1), instruments, tmp_path)
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result.stderr)
    assert re.search(expected, line), line
    assert emulated.heaters["heaters"].version == before  # no heater was written
    # identity and read-back queries only: nothing configured, nothing set
    assert all(server.commands - commands[name] <= 8 for name, server in emulated.servers.items())

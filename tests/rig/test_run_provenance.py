"""What a run on the rig records of where it came from, and what ``runs list`` / ``runs show`` say
of it: the overrides, the instruments' identities, the calibration file and its SHA-256, the
software version and commit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from drivers.emulated.rig import EmulatedRig
from ffzero_lab.cli.app import app

from .conftest import live_instruments_file
from .test_run import protocol_file, run


def test_a_rig_run_records_its_instruments_and_calibration(emulated: EmulatedRig, tmp_path: Path) -> None:
    instruments = live_instruments_file(emulated, tmp_path)
    result = run(protocol_file(tmp_path, epochs=1), instruments, tmp_path, "--set", "train.lr=0.05")
    assert result.exit_code == 0, result.stderr
    calibration = tmp_path / "calibration.yaml"
    digest = hashlib.sha256(calibration.read_bytes()).hexdigest()
    runs = ["--runs-dir", str(tmp_path / "runs")]

    shown = CliRunner().invoke(app, ["runs", "show", "1", "--json", *runs])
    doc = json.loads(shown.stdout)
    assert doc["overrides"] == ["train.lr=0.05"] and doc["protocol_path"] == str(tmp_path / "protocol.yaml")
    device = doc["device_description"]
    assert device["calibration_sha256"] == digest and Path(device["calibration"]) == calibration
    assert device["identities"] == {"heaters": "Q8iv-0001", "meter": "Keysight Technologies,N7744A,MY00000001,1.0.0"}
    assert doc["software_version"] and doc["method"] == "ff-dd" and doc["kind"] == "run"

    text = CliRunner().invoke(app, ["runs", "show", "1", *runs]).stdout
    assert f"protocol {tmp_path / 'protocol.yaml'}  overrides train.lr=0.05" in text
    assert "instruments heaters: Q8iv-0001; meter: Keysight Technologies,N7744A,MY00000001,1.0.0" in text
    assert f"sha256 {digest}" in text
    listed = CliRunner().invoke(app, ["runs", "list", "--json", *runs]).stdout
    (row,) = json.loads(listed)["runs"]
    assert (row["method"], row["device"], row["status"]) == ("ff-dd", device["rig"] or str(instruments), "complete")

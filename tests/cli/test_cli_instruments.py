"""`ffzero-lab instruments check` and `schema` against pyvisa-sim instruments (sims/rig.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pyvisa
import yaml
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from tests.drivers.instruments.conftest import SIMS
from tests.rig.test_config import changed

runner = CliRunner()
KEITHLEY = "drivers.instruments.keithley2600:Keithley2600"


def rig_file(tmp_path: Path, *edits: tuple[str, Any]) -> Path:
    """BASE on the simulated rig: a 24-channel Q8iv chain and an N7744A, plus ``edits``."""
    doc = changed(
        ("visa_library", f"{SIMS / 'rig.yaml'}@sim"),
        ("instruments.meter.resource", "TCPIP0::10.0.0.5::inst0::INSTR"),
        ("instruments.q8.timeout_ms", 100),
        *edits,
    )
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def check(path: Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["instruments", "check", "--instruments", str(path)])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every message written to any pyvisa resource."""
    log: list[str] = []
    original = pyvisa.resources.MessageBasedResource.write

    def spy(self: Any, message: str, *args: Any, **kwargs: Any) -> Any:
        log.append(message)
        return original(self, message, *args, **kwargs)

    monkeypatch.setattr(pyvisa.resources.MessageBasedResource, "write", spy)
    return log


def test_check_reads_identities_and_writes_nothing(tmp_path: Path, sent: list[str]) -> None:
    code, stdout, stderr = check(rig_file(tmp_path))
    assert code == 0, stderr
    assert "Q8iv-0042" in stdout and "4 of 24" in stdout
    assert "Keysight Technologies,N7744A" in stdout and "2 of 4" in stdout
    assert stdout.count("ok") == 2
    assert sent == ["id?", "nchan?", "vfull?", "ifull?", "*IDN?"]  # queries only


def test_check_reports_every_limit_the_instrument_cannot_meet(tmp_path: Path) -> None:
    path = rig_file(
        tmp_path,
        ("instruments.q8.channels.overrides", {2: {"voltage_max_V": 12.5, "current_max_mA": 30.0}}),
        ("layers.0.detectors.1.port", 5),
    )
    code, stdout, stderr = check(path)
    assert code == 2
    assert "2 problems" in stdout and "1 problem" in stdout
    assert stderr.splitlines() == [
        f"error: {path}: instruments.q8: channel 2: voltage_max_V 12.5 > instrument full scale 12.0 V",
        f"error: {path}: instruments.q8: channel 2: current_max_mA 30.0 > instrument full scale 24.0 mA",
        f"error: {path}: instruments.meter: ports [5] do not exist (N7744A has 4)",
    ]


def test_check_with_an_smu_and_its_bipolar_range(tmp_path: Path) -> None:
    path = rig_file(
        tmp_path,
        (
            "instruments.smu",
            {
                "resource": "GPIB0::26::INSTR",
                "driver": KEITHLEY,
                "channels": {
                    "count": 2,
                    "default": {
                        "voltage_min_V": -10.0,
                        "voltage_max_V": 10.0,
                        "current_max_mA": 20.0,
                        "resistance_ohm": 500.0,
                    },
                },
            },
        ),
    )
    code, stdout, stderr = check(path)
    assert code == 0, stderr
    assert "Model 2602B" in stdout and "2 of 2" in stdout


def test_an_instrument_that_does_not_answer_is_one_line_exit_2(tmp_path: Path) -> None:
    path = rig_file(tmp_path, ("instruments.q8.resource", "ASRL3::INSTR"))
    code, stdout, stderr = check(path)
    assert code == 2
    assert stderr.splitlines() == [
        f"error: {path}: instruments.q8: no reply from ASRL3::INSTR within 100 ms (command 'id?')"
    ]
    assert "no answer" in stdout and "Traceback" not in stdout + stderr


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ([("instruments.q8.resource", "nonsense")], "instruments.q8: cannot open resource 'nonsense'"),
        (
            [("visa_library", "/no/such/devices.yaml@sim")],
            "visa_library: pyvisa-sim file not found: /no/such/devices.yaml",
        ),
        ([("visa_library", "@nonexistent")], "visa_library: cannot load VISA library '@nonexistent'"),
        ([("instruments.q8.timeout", 5)], "instruments.q8.timeout: unknown field"),
    ],
)
def test_bad_files_and_resources_are_one_line_exit_2(tmp_path: Path, edits: list, expected: str) -> None:
    path = rig_file(tmp_path, *edits)
    code, _, stderr = check(path)
    assert code == 2
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and expected in lines[0], stderr


def test_missing_instruments_file(tmp_path: Path) -> None:
    code, _, stderr = check(tmp_path / "nope.yaml")
    assert (code, stderr.strip()) == (2, f"error: {tmp_path / 'nope.yaml'}: instruments file not found")


def test_schema_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["instruments", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "ffzero-lab instruments.yaml" and "instruments" in schema["properties"]
    out = tmp_path / "instruments.schema.json"
    assert runner.invoke(app, ["instruments", "schema", "--output", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == schema

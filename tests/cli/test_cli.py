"""The command line: a short dry run end to end, and bad input -> exit 2, one line, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app

ROOT = Path(__file__).resolve().parents[2]

QUICKSTART = ROOT / "protocols" / "quickstart.yaml"
runner = CliRunner()

SMALL = ["--set", "train.epochs=1", "--set", "data.train_limit=128", "--set", "data.test_limit=64",
         "--set", "network.width=64"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_dry_run_json_last_line_and_run_recorded(runs_dir: Path) -> None:
    code, stdout, stderr = invoke("dry-run", str(QUICKSTART), "--json", "-q", "--runs-dir", str(runs_dir), *SMALL)
    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert set(summary) >= {"run_id", "test_accuracy", "layer_accuracy", "evaluations", "wall_s"}
    assert len(summary["layer_accuracy"]) == 2
    # the quickstart's step: forward differences, K + 1 = 11 settings x batch 16; 109 of the 128 samples
    # train (the rest is the validation split): 7 steps of one epoch per layer, plus evaluation passes
    assert summary["evaluations"] >= 2 * 109 * 11
    code, stdout, _ = invoke("runs", "list", "--json", "--runs-dir", str(runs_dir))
    runs = json.loads(stdout)["runs"]
    assert [r["status"] for r in runs] == ["complete"]
    assert runs[0]["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    code, stdout, _ = invoke("runs", "show", str(summary["run_id"]), "--json", "--runs-dir", str(runs_dir))
    shown = json.loads(stdout)
    assert len(shown["epochs"]) == 2
    assert "prototypes/0" in shown["arrays"] and "parameters/1" in shown["arrays"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("train:\n  epochz: 3\n", [], "train.epochz: unknown field"),
        ("train:\n  epochs: three\n", [], "train.epochs"),
        ("train: {epochs: 0}\n", [], "train.epochs"),
        ("device: {driver: no-such-driver}\n", [], "device.driver: unknown driver"),
        ("device: {settings: {bs_eror: 0.1}}\n", [], "device.settings.bs_eror: unknown field"),
        ("network: {activation: {gain: high}}\n", [], "network.activation.gain"),
        ("network: {width: 32}\n", [], "network: the data has 64 features"),
        ("data: {set: mnist}\n", [], "data.set: data set 'mnist'"),
        ("train: [1, 2\n", [], "invalid YAML"),
        ("{}\n", ["train.epochs=abc"], "train.epochs"),
        ("{}\n", ["nonsense"], "--set: expected FIELD=VALUE"),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                                   overrides: list[str], expected: str) -> None:
    monkeypatch.delenv("FFZERO_DATA_DIR", raising=False)
    path = write(tmp_path, text)
    sets = [arg for o in overrides for arg in ("--set", o)]
    code, stdout, stderr = invoke("dry-run", str(path), "--runs-dir", str(tmp_path / "runs"), *sets)
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert expected in lines[0]
    assert "Traceback" not in stderr + stdout
    if not overrides or "=" in overrides[0] and overrides[0].split("=")[0] != "nonsense":
        assert str(path) in lines[0] or "--set" in lines[0]


def test_missing_protocol_file(tmp_path: Path) -> None:
    code, _, stderr = invoke("dry-run", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml: protocol file not found" in stderr


def test_console_script_exit_code_without_traceback(tmp_path: Path) -> None:
    """The installed entry point, in its own process, as a user runs it."""
    path = write(tmp_path, "train: {lr: -1}\n")
    proc = subprocess.run([sys.executable, "-m", "ffzero_lab", "dry-run", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "train.lr" in proc.stderr and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version_flag_and_attribute() -> None:
    import ffzero_lab

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"ffzero-lab {ffzero_lab.__version__}"
    assert ffzero_lab.__version__[0].isdigit()


def test_more_orthogonal_directions_than_a_layer_has_parameters_is_refused_before_training(tmp_path: Path) -> None:
    """K orthonormal directions need K dimensions: one line naming the field, exit 2, no run recorded
    (it used to fail with a ValueError traceback at the first step)."""
    result = runner.invoke(app, ["dry-run", str(QUICKSTART), "--set", "train.direction_kind=orthogonal",
                                 "--set", "train.directions=5000", "--runs-dir", str(tmp_path), "-q"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.direction_kind: 5000 orthogonal directions do not fit" in lines[0], lines
    listed = runner.invoke(app, ["runs", "list", "--json", "--runs-dir", str(tmp_path)])
    assert json.loads(listed.stdout.strip().splitlines()[-1]) == {"runs": []}

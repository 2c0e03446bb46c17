"""Malformed instruments files and calibration files through the real command line
(``instruments check -i FILE``, ``calibrate -i FILE``, ``run PROTOCOL --instruments FILE``):
exit code 2, exactly one line naming the file and the field, no traceback, nothing opened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.rig import load_calibration, load_rig

ROOT = Path(__file__).resolve().parents[2]
INSTRUMENTS = (ROOT / "instruments.emulated.yaml").read_text(encoding="utf-8")
CALIBRATION = (ROOT / "calibration" / "emulated.yaml").read_text(encoding="utf-8")
runner = CliRunner()


def edit(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


def inst(old: str, new: str) -> bytes:
    return edit(INSTRUMENTS, old, new).encode()


def cal(old: str, new: str) -> bytes:
    return edit(CALIBRATION, old, new).encode()


K0 = "k_rad_per_V2: 0.313015374057656"
PHI0 = "phi0_rad: 0.17785216644185373"
DEFAULT = "default: {voltage_max_V: 6.0, current_max_mA: 15.0, resistance_ohm: 500.0, safe_V: 0.0}"

# (id, file bytes, what the one line must contain besides the file)
INSTRUMENT_CASES: list[tuple[str, bytes, list[str]]] = [
    ("invalid-utf8", inst("name: emulated", "name: \xffemulated").replace(b"\xc3\xbf", b"\xff"),
     ["line 6", "instruments file is not UTF-8 text: byte 0xff at offset"]),
    ("latin1", INSTRUMENTS.replace("bench-1", "b\xe9nch").encode("latin-1"), ["not UTF-8"]),
    ("utf16", INSTRUMENTS.encode("utf-16"), ["not UTF-8", "offset 0"]),
    ("nul-byte", inst("name: emulated", "name: emu\x00lated"), ["invalid YAML", "line 6"]),
    ("duplicate-top-level", (INSTRUMENTS + "power_budget_W: 100.0\n").encode(),
     ["power_budget_W: duplicate key 'power_budget_W'", "first on line 9"]),
    ("duplicate-instrument", inst("  meter:\n", "  heaters:\n    resource: x\n  meter:\n"),
     ["instruments.heaters: duplicate key 'heaters'"]),
    ("duplicate-nested-field", inst("    timeout_ms: 500\n", "    timeout_ms: 500\n    timeout_ms: 5\n"),
     ["instruments.heaters.timeout_ms: duplicate key 'timeout_ms'"]),
    ("duplicate-channel-override", inst("        17: {voltage_max_V: 4.0", "        16: {voltage_max_V: 4.0"),
     ["instruments.heaters.channels.overrides[16]: duplicate key 16"]),
    ("duplicate-phase", inst('"phi[0,0]":   {instrument: heaters, channel: 1}',
                             '"theta[0,0]":   {instrument: heaters, channel: 1}'),
     ["layers[0].phases.theta[0,0]: duplicate key"]),
    ("duplicate-in-flow-mapping", inst("safe_V: 0.0}", "safe_V: 0.0, safe_V: 1.0}"),
     ["instruments.heaters.channels.default.safe_V: duplicate key"]),
    ("empty", b"", ["the instruments file is empty"]),
    ("only-comments", b"# instruments\n", ["the instruments file is empty"]),
    ("list", b"- heaters\n- meter\n", ["must be a mapping", "not a list"]),
    ("nan-budget", inst("power_budget_W: 1.0", "power_budget_W: .nan"), ["power_budget_W: must be a finite number"]),
    ("inf-budget", inst("power_budget_W: 1.0", "power_budget_W: .inf"), ["power_budget_W: must be a finite number"]),
    ("nan-string-budget", inst("power_budget_W: 1.0", "power_budget_W: 'nan'"), ["power_budget_W: ", "'nan'"]),
    ("inf-string-budget", inst("power_budget_W: 1.0", "power_budget_W: 'Infinity'"), ["power_budget_W", "finite"]),
    ("nan-voltage-max", inst("voltage_max_V: 6.0", "voltage_max_V: .nan"),
     ["instruments.heaters.channels.default.voltage_max_V: must be a finite"]),
    ("inf-voltage-max", inst("voltage_max_V: 6.0", "voltage_max_V: .inf"),
     ["instruments.heaters.channels.default.voltage_max_V: must be a finite"]),
    ("neg-inf-voltage-min", inst(DEFAULT, DEFAULT.replace("{", "{voltage_min_V: -.inf, ")),
     ["channels.default.voltage_min_V: must be a finite"]),
    ("inf-current", inst("current_max_mA: 15.0", "current_max_mA: .inf"),
     ["channels.default.current_max_mA: must be a finite"]),
    ("inf-resistance", inst("resistance_ohm: 500.0", "resistance_ohm: .inf"),
     ["channels.default.resistance_ohm: must be a finite"]),
    ("nan-safe-value", inst("safe_V: 0.0}", "safe_V: .nan}"), ["channels.default.safe_V: must be a finite"]),
    ("nan-override-resistance", inst("16: {voltage_max_V: 4.0, resistance_ohm: 350.0}",
                                     "16: {voltage_max_V: 4.0, resistance_ohm: .nan}"),
     ["channels.overrides[16].resistance_ohm: must be a finite"]),
    ("nan-settle-time", inst("settle_time_s: 0.002", "settle_time_s: .nan"), ["settle_time_s: must be a finite"]),
    ("inf-input-settle", inst("input_settle_time_s: 0.0005", "input_settle_time_s: .inf"),
     ["input_settle_time_s: must be a finite"]),
    ("nan-driver-setting", inst("averaging_time_s: 0.001", "averaging_time_s: .nan"),
     ["instruments.meter.settings.averaging_time_s: must be a finite"]),
    ("overflow-wavelength", inst("wavelength_nm: 1550", "wavelength_nm: 1.0e+999"),
     ["instruments.meter.settings.wavelength_nm: must be a finite"]),
    ("absurd-channel-count", inst("count: 20", "count: 1000000000000"),
     ["instruments.heaters.channels.count: must be at most 1,048,576"]),
    ("unmapped-phase", inst('      "gamma[3]":   {instrument: heaters, channel: 15}\n', ""),
     ["layers[0].phases: 1 of the mesh's 16 phases map to no heater channel (first: 'gamma[3]')",
      "unmapped: fixed"]),
    ("absurd-modes", inst("modes: 4", "modes: 100000"), ["layers[0].modes: must be at most 1,024"]),
    ("absurd-timeout", inst("timeout_ms: 500", "timeout_ms: 100000000000"),
     ["instruments.heaters.timeout_ms: must be at most 600,000"]),
    ("absurd-settle-time", inst("settle_time_s: 0.002", "settle_time_s: 1.0e+9"),
     ["settle_time_s: must be at most 60"]),
    ("absurd-retries", (INSTRUMENTS + "retries: 1000000000\n").encode(), ["retries: must be at most 100"]),
    ("alias-bomb", (INSTRUMENTS + "".join(
        f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}" if i else "0"] * 10) + "]\n" for i in range(8))).encode(),
     ["invalid YAML: its aliases expand"]),
    ("unclosed-flow", inst("safe_V: 0.0}", "safe_V: 0.0"), ["invalid YAML", "line"]),
    ("too-large", INSTRUMENTS.encode() + b"#" * (16 * 2**20) + b"\n", ["larger than 16 MiB"]),
]


def calibration_cases() -> list[tuple[str, bytes, list[str]]]:
    return [
        ("invalid-utf8", cal("rig: emulated", "rig: emu\xfflated").replace("\xff".encode(), b"\xff"),
         ["line 3", "calibration file is not UTF-8 text: byte 0xff"]),
        ("utf16", CALIBRATION.encode("utf-16"), ["not UTF-8"]),
        ("duplicate-channel", cal("    1:\n", "    0:\n"), ["channels.heaters[0]: duplicate key 0"]),
        ("duplicate-law-field", cal(K0, K0 + "\n      k_rad_per_V2: 0.5"),
         ["channels.heaters[0].k_rad_per_V2: duplicate key 'k_rad_per_V2' on line 10 (first on line 9)"]),
        ("duplicate-instrument", CALIBRATION.replace("channels:\n", "channels:\n  heaters: {}\n").encode(),
         ["channels.heaters: duplicate key 'heaters'"]),
        ("duplicate-top-level", (CALIBRATION + "rig: other\n").encode(), ["rig: duplicate key 'rig'"]),
        ("empty", b"", ["the calibration file is empty"]),
        ("list", b"- 1\n", ["must be a mapping"]),
        ("nan-phi0", cal(PHI0, "phi0_rad: .nan"), ["channels.heaters[0].phi0_rad: must be a finite number"]),
        ("inf-k", cal(K0, "k_rad_per_V2: .inf"), ["channels.heaters[0].k_rad_per_V2: must be a finite number"]),
        ("neg-inf-k", cal(K0, "k_rad_per_V2: -.inf"), ["channels.heaters[0].k_rad_per_V2: must be a finite number"]),
        ("nan-string-k", cal(K0, "k_rad_per_V2: 'nan'"), ["channels.heaters[0].k_rad_per_V2", "finite"]),
        ("nan-residual", cal("residual: 0.000822043870955733", "residual: .nan"),
         ["channels.heaters[0].residual: must be a finite"]),
        ("negative-channel", cal("    0:\n", "    -3:\n"), ["channels.heaters[-3]: channel -3 is negative"]),
    ]


CALIBRATION_CASES = calibration_cases()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(code: int, stdout: str, stderr: str, source: Path, expected: list[str]) -> str:
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert len(lines) == 1, stdout + stderr
    assert lines[0].startswith(f"error: {source}: "), lines[0]
    for words in expected:
        assert words in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in INSTRUMENT_CASES], ids=[c[0] for c in INSTRUMENT_CASES])
@pytest.mark.parametrize("command", ["instruments check", "calibrate"])
def test_bad_instruments_file(tmp_path: Path, command: str, data: bytes, expected: list[str]) -> None:
    path = tmp_path / "instruments.yaml"
    path.write_bytes(data)
    code, stdout, stderr = invoke(*command.split(), "-i", str(path))
    one_line(code, stdout, stderr, path, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instruments.yaml"]  # nothing written


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CALIBRATION_CASES],
                         ids=[c[0] for c in CALIBRATION_CASES])
def test_bad_calibration_file(tmp_path: Path, data: bytes, expected: list[str]) -> None:
    """``run --instruments`` reads the calibration file before it opens any instrument."""
    instruments = tmp_path / "instruments.yaml"
    instruments.write_text(edit(INSTRUMENTS, "calibration: calibration/emulated.yaml", "calibration: cal.yaml"))
    calibration = tmp_path / "cal.yaml"
    calibration.write_bytes(data)
    code, stdout, stderr = invoke("run", str(ROOT / "protocols" / "rig_4mode.yaml"), "--instruments",
                                  str(instruments), "-q", "--runs-dir", str(tmp_path / "runs"))
    one_line(code, stdout, stderr, calibration, expected)
    with pytest.raises(ConfigError) as info:  # the loader itself says the same
        load_calibration(calibration)
    assert f"error: {info.value}" == (stdout + stderr).strip()


def test_the_base_files_are_valid(tmp_path: Path) -> None:
    path = tmp_path / "instruments.yaml"
    path.write_text(INSTRUMENTS)
    assert load_rig(path).power_budget_W == 1.0
    assert load_calibration(ROOT / "calibration" / "emulated.yaml").law("heaters", 0) is not None


def test_missing_calibration_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("calibration file not found; make it with 'ffzero-lab calibrate'")):
        load_calibration(tmp_path / "none.yaml")


def test_a_chip_without_some_heaters_says_so(tmp_path: Path) -> None:
    """``unmapped: fixed`` accepts a mesh whose chip has no heater for some phases (not trained)."""
    path = tmp_path / "instruments.yaml"
    text = edit(INSTRUMENTS, '      "gamma[3]":   {instrument: heaters, channel: 15}\n', "")
    path.write_text(edit(text, "  - name: mesh0\n", "  - name: mesh0\n    unmapped: fixed\n"))
    assert load_rig(path).layers[0].unmapped == "fixed"
    assert "gamma[3]" not in load_rig(path).layers[0].phases

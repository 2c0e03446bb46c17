"""``ffzero-lab plot``: titles that say what trained, ``--format png|svg|pdf`` and ``--dpi``."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.store.plots import run_title

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plots") / "runs"
    result = runner.invoke(app, ["dry-run", str(ROOT / "protocols" / "quickstart.yaml"), "-q", "--runs-dir",
                                 str(folder), "--set", "train.epochs=1", "--set", "data.train_limit=64",
                                 "--set", "data.test_limit=32", "--set", "network.layers=1"])
    assert result.exit_code == 0, result.stderr
    return folder


def test_titles_name_the_method_and_its_settings() -> None:
    train = {"directions": 10, "eps": 0.1, "lr": 0.007}
    assert run_title(3, {"name": "quickstart", "method": "ff-dd", "train": train}) == \
        "run 3 quickstart: ff-dd, K=10, eps=0.1, lr=0.007"
    assert run_title(4, {"method": "bp-ad", "train": train}) == "run 4: bp-ad, lr=0.007"  # no K, eps: no perturbation


def png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">I", data[16:20])[0]


def test_format_and_dpi(runs: Path, tmp_path: Path) -> None:
    for fmt, magic in (("svg", b"<?xml"), ("pdf", b"%PDF")):
        result = runner.invoke(app, ["plot", "1", "--format", fmt, "--output", str(tmp_path / fmt),
                                     "--runs-dir", str(runs)])
        assert result.exit_code == 0, result.stderr
        paths = [Path(line) for line in result.stdout.split()]
        assert [p.name for p in paths] == [f"run-1-loss.{fmt}", f"run-1-accuracy.{fmt}"]
        assert all(p.read_bytes().startswith(magic) for p in paths)
    widths = {}
    for dpi in (50, 100):
        result = runner.invoke(app, ["plot", "1", "--dpi", str(dpi), "--output", str(tmp_path / str(dpi)),
                                     "--runs-dir", str(runs)])
        assert result.exit_code == 0, result.stderr
        widths[dpi] = png_width(tmp_path / str(dpi) / "run-1-loss.png")
    assert widths == {50: 350, 100: 700}  # the figure is 7 inches wide


def test_a_bad_format_is_one_line(runs: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["plot", "1", "--format", "jpg", "--output", str(tmp_path), "--runs-dir", str(runs)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --format: one of png, svg, pdf, not 'jpg'"

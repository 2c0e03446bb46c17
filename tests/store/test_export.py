"""`runs export` (csv, npz, netcdf) and `plot`: a small real run, exported and read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import netcdf_file
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.store.export import EPOCH_COLUMNS, STEP_COLUMNS, netcdf_array
from ffzero_lab.store.plots import tap_summary
from ffzero_lab.store.runstore import RunStore

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--set", "train.epochs=1", "--set", "data.train_limit=128", "--set", "data.test_limit=64",
         "--set", "device.settings.init=random", "--set", "train.eps=0.01"]
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs 1 (ff-dd, measurements recorded), 2 (ff-dd, measurements off), 3 (bp-dd, recorded)."""
    folder = tmp_path_factory.mktemp("export") / "runs"
    for extra in (["--set", "record.measurements=true"], ["--set", "record.measurements=false"],
                  ["--set", "record.measurements=true", "--set", "method=bp-dd"]):
        code, _, stderr = invoke("dry-run", str(ROOT / "protocols" / "quickstart.yaml"), *SMALL, *extra,
                                 "-q", "--runs-dir", str(folder))
        assert code == 0, stderr
    return folder


@pytest.fixture
def store(runs: Path):
    s = RunStore(runs)
    yield s
    s.close()


def export(runs: Path, run: str, fmt: str, output: Path) -> Path:
    code, stdout, stderr = invoke("runs", "export", run, "--format", fmt, "--output", str(output),
                                  "--runs-dir", str(runs))
    assert code == 0, stderr
    assert stdout.strip() == str(output)
    return output


def test_npz_holds_every_table_array_and_reading(runs: Path, store: RunStore, tmp_path: Path) -> None:
    path = export(runs, "1", "npz", tmp_path / "run.npz")
    steps = store.steps(1)
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["metadata"]))
        assert meta["uid"] == store.run_row(1)["uid"] and meta["status"] == "complete"
        assert json.loads(meta["protocol_json"]) == store.protocol(1)
        assert sorted(steps[0]) == sorted(STEP_COLUMNS)
        assert sorted(store.epochs(1)[0]) == sorted(EPOCH_COLUMNS)
        np.testing.assert_array_equal(data["steps/loss"], [s["loss"] for s in steps])
        np.testing.assert_array_equal(data["steps/version"], [s["version"] for s in steps])
        np.testing.assert_array_equal(data["epochs/test_accuracy"], [e["test_accuracy"] for e in store.epochs(1)])
        np.testing.assert_array_equal(data["arrays/parameters/0"], store.array(1, "parameters/0"))
        np.testing.assert_array_equal(data["arrays/prototypes/1"], store.array(1, "prototypes/1"))
        layer, version = steps[-1]["layer"], steps[-1]["version"]
        m = store.measurement(1, layer, version)
        np.testing.assert_array_equal(data[f"readings/{layer}/{version}"], m["readings"])
        np.testing.assert_array_equal(data[f"samples/{layer}/{version}"], m["samples"])
        np.testing.assert_array_equal(data[f"parameters/{layer}/{version}"], store.parameters_at(1, layer, version))
        assert data[f"readings/{layer}/{version}"].shape == (20, 64, 64)  # (2K, B, ports)
        assert data["measurements/eps"].tolist() == [0.01] * len(steps)
        np.testing.assert_array_equal(data["checkpoint/theta"], store.checkpoint(1).theta)


def test_csv_folder_reads_back_with_the_csv_module(runs: Path, store: RunStore, tmp_path: Path) -> None:
    folder = export(runs, store.run_row(1)["uid"][:6], "csv", tmp_path / "run")
    rows = lambda name: list(csv.DictReader((folder / name).open(newline="")))  # noqa: E731
    (run,) = rows("run.csv")
    assert json.loads(run["protocol_json"]) == store.protocol(1) and run["status"] == "complete"
    steps = store.steps(1)
    assert [float(r["loss"]) for r in rows("steps.csv")] == [s["loss"] for s in steps]
    assert [float(r["loss"]) for r in rows("epochs.csv")] == [e["loss"] for e in store.epochs(1)]
    measurements = rows("measurements.csv")
    assert len(measurements) == len(steps) and "readings" not in measurements[0]
    m = store.measurement(1, 1, 0)
    row = next(r for r in measurements if r["layer"] == "1" and r["version"] == "0")
    assert [int(i) for i in row["samples"].split()] == m["samples"].tolist()
    assert row["readings_shape"] == "20 64 64" and int(row["directions"]) == 10 and float(row["eps"]) == 0.01
    with np.load(folder / "readings.npz") as readings:
        np.testing.assert_array_equal(readings["readings/1/0"], m["readings"])
    with np.load(folder / "arrays.npz") as arrays:
        np.testing.assert_array_equal(arrays["parameters/0"], store.array(1, "parameters/0"))


def test_netcdf_reads_back_with_scipy(runs: Path, store: RunStore, tmp_path: Path) -> None:
    path = export(runs, "1", "netcdf", tmp_path / "run.nc")
    with netcdf_file(path, "r", mmap=False) as nc:
        assert nc.uid.decode() == store.run_row(1)["uid"] and nc.status == b"complete"
        assert json.loads(nc.protocol_json.decode()) == store.protocol(1)
        assert nc.dimensions["steps"] == len(store.steps(1))
        np.testing.assert_array_equal(nc.variables["steps_loss"][:], [s["loss"] for s in store.steps(1)])
        np.testing.assert_array_equal(nc.variables["epochs_layer"][:], [e["layer"] for e in store.epochs(1)])
        assert nc.variables["steps_time"].units == b"seconds since 1970-01-01 00:00:00"
        np.testing.assert_array_equal(nc.variables["parameters_0"][:], store.array(1, "parameters/0"))
        np.testing.assert_array_equal(nc.variables["device_1_bs_error"][:], store.array(1, "device/1/bs_error"))


def test_a_run_without_measurements_exports(runs: Path, tmp_path: Path) -> None:
    folder = export(runs, "2", "csv", tmp_path / "csv")
    assert not (folder / "readings.npz").exists()
    assert (folder / "measurements.csv").read_text().strip().count("\n") == 0  # header only
    with np.load(export(runs, "2", "npz", tmp_path / "run.npz")) as data:
        assert not [k for k in data.files if k.startswith(("readings/", "samples/"))]
        assert data["measurements/layer"].shape == (0,) and data["steps/loss"].size > 0
    with netcdf_file(export(runs, "2", "netcdf", tmp_path / "run.nc"), "r", mmap=False) as nc:
        assert "measurements" not in nc.dimensions and "steps_loss" in nc.variables


def test_default_output_names(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = invoke("runs", "export", "2", "--format", "npz", "--runs-dir", str(runs))
    assert code == 0, stderr
    assert stdout.strip() == "run-2.npz" and (tmp_path / "run-2.npz").is_file()


def test_plot_writes_pngs(runs: Path, tmp_path: Path) -> None:
    code, stdout, stderr = invoke("plot", "1", "--output", str(tmp_path / "ff"), "--runs-dir", str(runs))
    assert code == 0, stderr
    paths = [Path(line) for line in stdout.split()]
    assert [p.name for p in paths] == ["run-1-loss.png", "run-1-accuracy.png", "run-1-taps.png"]
    assert all(p.read_bytes().startswith(PNG) and p.stat().st_size > 1000 for p in paths)
    code, stdout, stderr = invoke("plot", "3", "--output", str(tmp_path / "bp"), "--runs-dir", str(runs))
    assert code == 0, stderr
    assert [Path(line).name for line in stdout.split()] == ["run-3-loss.png", "run-3-accuracy.png"]  # no prototypes


@pytest.mark.parametrize("args", [
    ["runs", "export", "99", "--format", "npz"],
    ["runs", "export", "1", "--format", "xlsx"],
    ["runs", "export", "1", "--format", "npz", "--output", "{file}/run.npz"],
    ["runs", "export", "1", "--format", "csv", "--output", "{file}"],
    ["runs", "export", "1", "--format", "netcdf", "--output", "{tmp}"],
    ["plot", "zzz"],
    ["plot", "1", "--output", "{file}"],
])
def test_errors_are_one_line_and_exit_2(runs: Path, tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "file").write_text("not a folder")
    args = [a.format(file=tmp_path / "file", tmp=tmp_path) for a in args]
    code, stdout, stderr = invoke(*args, "--runs-dir", str(runs))
    assert code == 2, stdout + stderr
    assert len([line for line in stderr.splitlines() if line.strip()]) == 1, stderr
    assert stderr.startswith("error:") and "Traceback" not in stderr


def test_tap_summary_groups_unit_readings_by_class() -> None:
    prototypes = np.eye(3, 4)
    readings = np.stack([5.0 * prototypes[[0, 1, 1]], 2.0 * prototypes[[0, 1, 1]]])  # (2K=2, B=3, P=4)
    labelled = tap_summary([(readings, np.array([0, 1, 1]))], prototypes, centred=False)
    assert labelled.by_label and labelled.counts.tolist() == [2, 4, 0]
    np.testing.assert_allclose(labelled.means[:2], prototypes[:2])  # unit length, whatever the scale
    np.testing.assert_allclose(labelled.cosine[:2], 1.0)
    assert np.isnan(labelled.cosine[2])
    predicted = tap_summary([(readings, None)], prototypes, centred=False)
    assert not predicted.by_label and predicted.counts.tolist() == [2, 4, 0]


def test_netcdf_types() -> None:
    assert netcdf_array(np.array([1, 2], dtype=np.int64)).dtype == np.int32
    assert netcdf_array(np.array([2**40], dtype=np.int64)).dtype == np.float64
    assert netcdf_array(np.array([True])).dtype == np.int8
    assert netcdf_array(np.array([1j])) is None

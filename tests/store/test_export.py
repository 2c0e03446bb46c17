"""`runs export` (csv, npz, netcdf) and `plot`: a small real run, exported and read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.store.export import EPOCH_COLUMNS, STEP_COLUMNS
from ffzero_lab.store.plots import tap_summary
from ffzero_lab.store.runstore import RunStore

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--set", "train.epochs=1", "--set", "data.train_limit=128", "--set", "data.test_limit=64",
         "--set", "device.settings.init=random", "--set", "train.eps=0.01",
         # the paper's step (2K settings of batch 64, eps as given), which the shapes below are written for
         "--set", "train.difference=central", "--set", "train.batch_size=64", "--set", "train.calibrate=false",
         "--set", "data.validation=0", "--set", "train.patience=null"]
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs 1 (ff-dd, measurements recorded), 2 (ff-dd, measurements off), 3 (bp-dd, recorded), 4 (ff-dd,
    calibrated, forward differences, validation split, recorded)."""
    folder = tmp_path_factory.mktemp("export") / "runs"
    for extra in (["--set", "record.measurements=true"], ["--set", "record.measurements=false"],
                  ["--set", "record.measurements=true", "--set", "method=bp-dd"],
                  ["--set", "record.measurements=true", "--set", "train.calibrate=true", "--set",
                   "train.difference=forward", "--set", "data.validation=0.2"]):
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


def test_netcdf_reopens_with_xarray_with_coordinates_units_and_values(runs: Path, store: RunStore,
                                                                      tmp_path: Path) -> None:
    path = export(runs, "1", "netcdf", tmp_path / "run.nc")
    steps, epochs = store.steps(1), store.epochs(1)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["uid"] == store.run_row(1)["uid"] and ds.attrs["status"] == "complete"
        assert json.loads(ds.attrs["protocol_json"]) == store.protocol(1)
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert {"layer", "epoch", "step", "port", "class", "parameter"} <= set(ds.coords)
        assert ds["layer"].values.tolist() == [0, 1] and ds["epoch"].values.tolist() == [0]
        assert ds.sizes == {**ds.sizes, "step": 2, "port": 64, "class": 10, "parameter": 4096}
        assert not [name for name in ds.variables if "_dim0" in name]  # every axis the quickstart has is named
        assert ds["device_bs_error"].dims == ("layer", "mesh_column", "mzi")
        for s in steps:
            assert float(ds["loss"].sel(layer=s["layer"], step=s["version"])) == s["loss"]
            assert float(ds["eps"].sel(layer=s["layer"], step=s["version"])) == 0.01
        for e in epochs:
            assert float(ds["epoch_test_accuracy"].sel(layer=e["layer"], epoch=e["epoch"])) == e["test_accuracy"]
        np.testing.assert_array_equal(ds["parameters"].sel(layer=0), store.array(1, "parameters/0"))
        np.testing.assert_array_equal(ds["prototypes"].sel(layer=1), store.array(1, "prototypes/1"))
        np.testing.assert_array_equal(ds["device_bs_error"].sel(layer=1), store.array(1, "device/1/bs_error"))
        assert ds["prototypes"].dims == ("layer", "class", "port")
        assert ds["parameters"].attrs["units"] == "rad" and ds["eps"].attrs["units"] == "rad"
        assert ds["evaluations_per_s"].attrs["units"] == "s-1" and ds["loss"].attrs["units"] == "1"
        assert all("long_name" in ds[name].attrs for name in ds.data_vars)
        # times: CF units on disk, datetime64 once decoded, the store's seconds to the microsecond
        assert ds["step_time"].encoding["units"] == "seconds since 1970-01-01"
        seconds = ds["step_time"].sel(layer=0, step=0).values.astype("datetime64[ns]").astype(np.int64) / 1e9
        assert abs(seconds - steps[0]["time"]) < 1e-6
    with xr.open_dataset(path, decode_times=False) as raw:
        assert raw["step_time"].attrs["units"] == "seconds since 1970-01-01"


def test_netcdf_of_a_bp_run_has_the_whole_network_as_layer_minus_one(runs: Path, tmp_path: Path) -> None:
    with xr.open_dataset(export(runs, "3", "netcdf", tmp_path / "bp.nc")) as ds:
        assert ds["layer"].values.tolist() == [-1, 0, 1]
        assert np.isfinite(ds["loss"].sel(layer=-1)).all() and np.isnan(ds["loss"].sel(layer=0)).all()
        assert np.isnan(ds["layer_test_accuracy"].sel(layer=0)) and np.isfinite(ds["layer_test_accuracy"].sel(layer=1))


def test_a_run_without_measurements_exports(runs: Path, tmp_path: Path) -> None:
    folder = export(runs, "2", "csv", tmp_path / "csv")
    assert not (folder / "readings.npz").exists()
    assert (folder / "measurements.csv").read_text().strip().count("\n") == 0  # header only
    with np.load(export(runs, "2", "npz", tmp_path / "run.npz")) as data:
        assert not [k for k in data.files if k.startswith(("readings/", "samples/"))]
        assert data["measurements/layer"].shape == (0,) and data["steps/loss"].size > 0
    with xr.open_dataset(export(runs, "2", "netcdf", tmp_path / "run.nc")) as ds:
        assert "eps" not in ds and "directions" not in ds and ds["loss"].notnull().all()


@pytest.mark.parametrize(("fmt", "name"), [("npz", "run-2.npz"), ("netcdf", "run-2.nc"), ("csv", "run-2")])
def test_exports_go_beside_the_runs_dir_by_default(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   fmt: str, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = invoke("runs", "export", "2", "--format", fmt, "--runs-dir", str(runs))
    assert code == 0, stderr
    assert Path(stdout.strip()) == runs / "exports" / name and (runs / "exports" / name).exists()
    assert list(tmp_path.iterdir()) == []  # nothing in the working directory


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


@pytest.mark.parametrize("fmt", ["npz", "netcdf", "csv"])
def test_a_calibrated_run_exports(runs: Path, store: RunStore, tmp_path: Path, fmt: str) -> None:
    """Its calibration arrays and forward-difference readings ((K + 1, B, ports)) go out like any other."""
    path = export(runs, "4", fmt, tmp_path / f"run4.{fmt}")
    assert path.exists()
    assert store.array(4, "calibration/0/eps").shape == (1,)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as data:
            assert data["arrays/calibration/1/eps"].tolist() == store.array(4, "calibration/1/eps").tolist()
            m = store.steps(4)[-1]
            assert data[f"readings/{m['layer']}/{m['version']}"].shape[0] == 10 + 1

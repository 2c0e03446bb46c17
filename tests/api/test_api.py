"""The Python API: protocols with overrides, training with sinks of one's choice (simulated chip,
instruments, a served rig), the result, and the run store as DataFrames and an xarray.Dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import ffzero_lab as fz
from ffzero_lab.core.network import Network
from ffzero_lab.store.runstore import StoreError, StoreSink

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "protocols" / "quickstart.yaml"
SMALL = {"train.epochs": 2, "data.train_limit": 128, "data.test_limit": 64, "device.settings.init": "random",
         "record.measurements": True,
         # two steps an epoch: batches of 64, no validation split (the quickstart's own: 16, 15 %)
         "train.batch_size": 64, "data.validation": 0, "train.patience": None}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[fz.TrainResult, list[tuple[str, dict[str, Any]]]]:
    """A small recorded dry run, with every document it emitted."""
    documents: list[tuple[str, dict[str, Any]]] = []
    folder = tmp_path_factory.mktemp("api") / "runs"
    result = fz.train(QUICK, overrides=SMALL, runs_dir=folder, progress=False,
                      sinks=[lambda name, doc: documents.append((name, doc))])
    return result, documents


def test_import_ffzero_lab_loads_the_api_only_when_used() -> None:
    code = ("import sys, ffzero_lab as fz\n"
            "heavy = [m for m in ('ffzero_lab.api', 'pandas', 'xarray', 'numpy', 'zmq') if m in sys.modules]\n"
            "assert heavy == [], heavy\n"
            "assert callable(fz.train) and 'ffzero_lab.api' in sys.modules and 'train' in dir(fz)\n"
            "print(fz.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == fz.__version__
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        fz.trian  # noqa: B018


def test_a_protocol_loads_with_overrides_and_remembers_its_file() -> None:
    protocol = fz.load_protocol(QUICK, overrides={"train.epochs": np.int64(3), "data.resize": [8, 8]})
    assert protocol.train.epochs == 3 and protocol.data.resize == (8, 8)
    assert protocol.source == str(QUICK) and protocol.text == QUICK.read_text()
    assert protocol.overrides == ("train.epochs=3", "data.resize=[8, 8]")
    changed = protocol.with_overrides(["method=bp-dd"])
    assert changed.method == "bp-dd" and protocol.method == "ff-dd"  # a new protocol; the first is unchanged
    assert changed.overrides[-1] == "method=bp-dd" and changed.text == protocol.text
    assert fz.Protocol.load(QUICK, "train.lr=0.02").train.lr == 0.02


def test_a_bad_override_is_one_error_naming_the_file_and_the_field() -> None:
    with pytest.raises(fz.ConfigError) as caught:
        fz.load_protocol(QUICK, overrides={"train.epochs": "many"})
    assert str(caught.value).startswith(f"{QUICK} (--set): train.epochs:")
    with pytest.raises(fz.ConfigError, match="train.bogus: unknown field"):
        fz.load_protocol(QUICK).with_overrides({"train.bogus": 1})


def test_train_returns_the_result_and_feeds_every_sink(trained) -> None:
    result, documents = trained
    assert result.kind == "dry-run" and result.run_id == 1 and result.metric == "accuracy"
    assert 0.0 <= result.test_accuracy <= 1.0 and len(result.layer_accuracy) == 2
    assert result.evaluations > 0 and result.wall_s > 0
    assert [p.shape for p in result.parameters] == [(4096,), (4096,)]  # 64-mode meshes: N^2 phases
    assert [p.shape for p in result.prototypes] == [(10, 64), (10, 64)]
    names = [name for name, _ in documents]
    assert names[0] == "start" and names[-1] == "stop" and names.count("epoch") == 4
    assert {doc["run_uid"] for _, doc in documents} == {result.run_uid}
    assert isinstance(result.epochs, pd.DataFrame) and len(result.epochs) == 4
    assert result.epochs["test_accuracy"].tolist() == [doc["test_accuracy"] for n, doc in documents if n == "epoch"]
    assert result.epochs.attrs["units"]["evaluations_per_s"] == "s-1"
    assert result.protocol.train.epochs == 2


def test_the_run_store_reads_as_dataframes(trained) -> None:
    result, documents = trained
    with fz.open_runs(result.runs_dir) as runs:
        table = runs.runs()
        assert table.index.name == "id" and table.loc[1, "uid"] == result.run_uid
        assert table.loc[1, "status"] == "complete" and table.loc[1, "test_accuracy"] == result.test_accuracy
        assert str(table["started_at"].dtype) == "datetime64[ns, UTC]"
        steps = runs.steps(result)  # a TrainResult, a number or a uid prefix name the run
        assert steps.equals(runs.steps(1)) and steps.equals(runs.steps(result.run_uid[:6]))
        assert len(steps) == 2 * 2 * 2  # layers x epochs x steps of 64 of the 128 samples
        assert steps["loss"].tolist() == [d["loss"] for n, d in documents if n == "step"]
        epochs = runs.epochs(result)
        assert epochs[["layer", "epoch"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
        measurements = runs.measurements(result)  # readings of K + 1 settings (forward differences)
        assert len(measurements) == 8 and measurements["directions"].tolist() == [10] * 8
        assert measurements["samples"].iloc[0].shape == (64,) and measurements["readings_shape"].iloc[0] == (11, 64, 64)
        readings = runs.readings(result, 1, 0)
        assert readings.dims == ("setting", "sample", "port") and readings.shape == (11, 64, 64)
        np.testing.assert_array_equal(readings["sample"], measurements["samples"].iloc[4])
        assert runs.protocol(result).model_dump() == result.protocol.model_dump()
        np.testing.assert_array_equal(runs.arrays(result)["parameters/1"], result.parameters[1])


def test_a_run_reads_as_a_dataset_with_coordinates_and_units(trained) -> None:
    result, _ = trained
    ds = result.dataset()
    assert isinstance(ds, xr.Dataset)
    assert ds["layer"].values.tolist() == [0, 1] and ds["epoch"].values.tolist() == [0, 1]
    assert ds["step"].values.tolist() == [0, 1, 2, 3] and ds["step_epoch"].values.tolist() == [0, 0, 1, 1]
    assert ds.sizes["port"] == 64 and ds.sizes["class"] == 10 and ds.sizes["parameter"] == 4096
    assert ds["prototypes"].dims == ("layer", "class", "port")
    assert ds["loss"].dims == ("layer", "step") and ds["epoch_loss"].dims == ("layer", "epoch")
    np.testing.assert_array_equal(ds["parameters"].sel(layer=1), result.parameters[1])
    np.testing.assert_array_equal(ds["prototypes"].sel(layer=0), result.prototypes[0])
    np.testing.assert_array_equal(ds["epoch_test_accuracy"].values.ravel(), result.epochs["test_accuracy"])
    np.testing.assert_array_equal(ds["layer_test_accuracy"], result.layer_accuracy)
    assert float(ds["test_accuracy"]) == result.test_accuracy
    units = {name: ds[name].attrs.get("units") for name in ("parameters", "eps", "evaluations_per_s", "loss",
                                                             "device_heater_k")}
    assert units == {"parameters": "rad", "eps": "rad", "evaluations_per_s": "s-1", "loss": "1",
                     "device_heater_k": "rad V-2"}
    assert all("long_name" in ds[name].attrs for name in ds.data_vars)
    assert np.issubdtype(ds["step_time"].dtype, np.datetime64) and not np.isnat(ds["step_time"]).any()
    assert ds.attrs["uid"] == result.run_uid and ds.attrs["Conventions"] == "CF-1.8"
    assert ds.attrs["status"] == "complete" and ds.attrs["started_at"].endswith("Z")


def test_a_run_not_recorded_still_returns_its_result(tmp_path: Path) -> None:
    result = fz.train(QUICK, overrides={**SMALL, "train.epochs": 1}, record=False, progress=False)
    assert result.run_id is None and result.runs_dir is None and len(result.epochs) == 2
    with pytest.raises(fz.UserError, match="not recorded"):
        result.dataset()


def test_open_runs_of_a_folder_without_a_store_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(fz.UserError, match="no run store here"):
        fz.open_runs(tmp_path)
    assert not (tmp_path / "runs.sqlite").exists()  # reading creates nothing


def test_an_empty_store_gives_empty_tables_with_their_columns(tmp_path: Path) -> None:
    from ffzero_lab.store.runstore import RunStore

    RunStore(tmp_path).close()
    with fz.open_runs(tmp_path) as runs:
        table = runs.runs()
    assert table.empty and table.index.name == "id" and {"uid", "status", "test_accuracy"} <= set(table.columns)


@pytest.mark.parametrize("where", ["missing", "file", "/proc"])
def test_a_store_sink_that_cannot_write_fails_at_once(tmp_path: Path, where: str) -> None:
    folder = {"missing": tmp_path / "no" / "such", "file": tmp_path / "file", "/proc": Path("/proc")}[where]
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="the run store could not be written") as caught:
        StoreSink(folder, "dry-run", None, None, "0")
    assert str(folder) in str(caught.value)


def test_the_network_is_made_safe_and_closed_when_a_sink_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(Network, "safe_state", lambda self: calls.append("safe"))
    monkeypatch.setattr(Network, "close", lambda self: calls.append("close"))

    def broken(name: str, doc: dict[str, Any]) -> None:
        if name == "step":
            raise RuntimeError("the sink broke")

    with pytest.raises(RuntimeError, match="the sink broke"):
        fz.train(QUICK, overrides=SMALL, runs_dir=tmp_path, sinks=[broken], progress=False)
    assert calls == ["safe", "close"]
    with fz.open_runs(tmp_path) as runs:
        assert runs.runs()["status"].tolist() == ["failed"]
    calls.clear()
    fz.train(QUICK, overrides={**SMALL, "train.epochs": 1}, runs_dir=tmp_path, progress=False)
    assert calls == ["safe", "close"]  # and on a normal return


def test_train_refuses_two_rigs_at_once() -> None:
    with pytest.raises(fz.UserError, match="not both"):
        fz.train(QUICK, instruments="instruments.yaml", rig="tcp://127.0.0.1:5555")


def test_train_on_instruments_through_their_drivers(tmp_path: Path) -> None:
    from drivers.emulated.rig import EmulatedRig
    from tests.rig.conftest import corners_data, emulated_rig_file, live_instruments_file
    from tests.rig.test_run import PROTOCOL

    rig = EmulatedRig.from_file(emulated_rig_file(tmp_path), any_port=True).start()
    try:
        protocol = fz.Protocol.model_validate(PROTOCOL).with_overrides({"train.epochs": 2})
        result = fz.train(protocol, instruments=live_instruments_file(rig, tmp_path), runs_dir=tmp_path / "runs",
                          data_dir=corners_data(tmp_path), progress=False)
        np.testing.assert_array_equal(rig.heaters["heaters"].volts, 0.0)  # left safe
    finally:
        rig.stop()
    assert result.kind == "run" and result.evaluations == 2 * 8 * 2 * 2 * 16 + 2 * 128 + 128
    with fz.open_runs(tmp_path / "runs") as runs:
        row = runs.runs().loc[result.run_id]
        assert row["kind"] == "run" and row["status"] == "complete"
        ds = runs.dataset(result)
    assert ds.sizes["port"] == 4 and ds["device_phase_k_rad_per_V2"].dims[0] == "layer"


def test_train_on_a_served_rig(tmp_path: Path) -> None:
    from tests.live.test_remote import free_port, start_server, stop

    address = f"tcp://127.0.0.1:{free_port()}"
    server = start_server(address)
    try:
        result = fz.train(QUICK, overrides={**SMALL, "train.epochs": 1, "record.measurements": False}, rig=address,
                          runs_dir=tmp_path, progress=False)
    finally:
        stop(server)
    assert result.kind == "run" and len(result.layer_accuracy) == 2
    with fz.open_runs(tmp_path) as runs:
        assert runs.runs().loc[result.run_id, "status"] == "complete"


def test_a_run_trained_from_python_records_its_overrides_and_commit(
        trained: tuple[fz.TrainResult, list[tuple[str, dict[str, Any]]]]) -> None:
    """``runs show`` tells which overrides and which software took the data, as for the CLI."""
    from ffzero_lab.store.runstore import RunStore

    result, _ = trained
    store = RunStore(result.runs_dir)
    try:
        row = store.run_row(result.run_id)
    finally:
        store.close()
    assert "train.batch_size=64" in json.loads(row["overrides_json"])
    assert row["git_commit"] is None or len(row["git_commit"].split("+")[0]) == 40

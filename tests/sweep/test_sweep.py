"""Sweeps: the file and its grid, up-front validation, the results store and tables, figures,
cells on a 2-worker Dask LocalCluster (127.0.0.1 only), and resuming a sweep killed with SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.run.orchestrator import RunResult
from ffzero_lab.sweep.cluster import dask_client, run_cell, run_cells
from ffzero_lab.sweep.grid import (
    ResultStore,
    csv_columns,
    expand,
    load_sweep,
    make_record,
    markdown,
    override,
    plan,
    result_fields,
    results_table,
    write_csv,
)
from ffzero_lab.sweep.plots import (
    bar_groups,
    series,
    value_label,
    write_figures,
    x_axes,
)

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "protocols" / "quickstart.yaml"

#: quickstart on the digital device: a cell trains in a few hundredths of a second.
FAST = f"""\
protocol: {QUICKSTART}
set:
  device.driver: digital
  device.settings: {{}}
  network.activation: {{}}
  data.encoding: raw
  network.width: 16
  train.epochs: 1
  data.train_limit: 200
  data.test_limit: 100
"""

runner = CliRunner()


def write(folder: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# --- the file and the grid ---------------------------------------------------------------------


def test_override_text_reads_back_as_the_value() -> None:
    assert override("method", "ff-dd") == "method=ff-dd"
    assert override("network.layers", 4) == "network.layers=4"
    assert override("train.lr", 0.005) == "train.lr=0.005"
    assert override("device.settings", {}) == "device.settings={}"
    assert override("name", "1") == 'name="1"'  # a string that YAML would read as a number
    assert override("data.test_limit", None) == "data.test_limit=null"


def test_grid_expands_first_axis_slowest_with_validated_protocols(tmp_path: Path) -> None:
    fast = FAST.replace("  network.activation: {}\n", "")
    path = write(tmp_path, fast + "grid:\n  method: [ff-dd, bp-dd]\n  network.layers: [1, 2, 4]\n"
                 "  network.activation: [{kind: relu}, {kind: tanh}]\n")
    sweep = load_sweep(path)
    cells = expand(sweep)
    assert len(cells) == 12
    assert [c.values["method"] for c in cells[:6]] == ["ff-dd"] * 6
    assert [c.values["network.layers"] for c in cells[:6]] == [1, 1, 2, 2, 4, 4]
    last = cells[-1]
    assert last.protocol.method == "bp-dd" and last.protocol.network.layers == 4
    assert last.protocol.network.activation == {"kind": "tanh"}
    assert last.protocol.device.driver == "digital" and last.protocol.network.width == 16
    assert last.overrides[-3:] == ("method=bp-dd", "network.layers=4", 'network.activation={"kind": "tanh"}')
    assert last.label == 'method=bp-dd network.layers=4 network.activation={"kind":"tanh"}'
    assert len({c.key for c in cells}) == 12
    assert expand(load_sweep(path))[5].key == cells[5].key  # a key is the protocol's, stable


def test_a_sweep_without_grid_is_one_cell_and_the_base_path_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "protocols").mkdir()
    (tmp_path / "protocols" / "base.yaml").write_text(QUICKSTART.read_text())
    (tmp_path / "sweeps").mkdir()
    path = write(tmp_path / "sweeps", "protocol: ../protocols/base.yaml\nset: ['train.epochs=2']\n")
    cells = expand(load_sweep(path))
    assert len(cells) == 1 and cells[0].protocol.train.epochs == 2 and cells[0].label == "(base protocol)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FAST + "grids: {seed: [0]}\n", "sweep.yaml: grids: unknown field"),
        ("set: {}\n", "sweep.yaml: protocol: Field required"),
        (FAST + "grid: {seed: []}\n", "sweep.yaml: grid.seed: List should have at least 1 item"),
        (FAST + "grid: {seed: [0, 1, 0]}\n", "sweep.yaml: grid: seed: a value is listed twice"),
        (FAST + "grid: {train.epochs: [1, 2]}\n", "sweep.yaml: grid: train.epochs is both fixed (set) and in the grid"),
        (FAST + "grid: {'network layers': [1]}\n", "'network layers' is not a dotted field name"),
        (FAST + "grid: {train.batch_size: [16, 0]}\n",
         "sweep.yaml: grid cell train.batch_size=0: train.batch_size: Input should be greater than or equal to 1"),
        (FAST + "grid: {network.widht: [3]}\n", "sweep.yaml: grid cell network.widht=3: network.widht: unknown field"),
        (FAST + "grid: {method: [ff-dd, ff-zz]}\n", "sweep.yaml: grid cell method=ff-zz: method: Input should be"),
        (FAST.replace("  device.settings: {}\n", "") + "grid: {device.settings: [{}, {bias: true, biass: 1}]}\n",
         'sweep.yaml: grid cell device.settings={"bias":true,"biass":1}: device.settings.biass: unknown field'),
        (FAST.replace("  network.activation: {}\n", "") + "grid: {network.activation: [{kind: sigmoid}]}\n",
         "grid cell network.activation={\"kind\":\"sigmoid\"}: network.activation.kind: Input should be"),
        (FAST.replace("train.epochs: 1", "train.epochs: 0"), "sweep.yaml: set.train.epochs: Input should be greater"),
        ("protocol: nowhere.yaml\n", "nowhere.yaml: protocol file not found"),
        (FAST + "grid: [1, 2\n", "sweep.yaml: line"),
        ("- a list\n", "sweep.yaml: a sweep file must be a mapping"),
    ],
)
def test_bad_sweep_files_name_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        expand(load_sweep(path))
    assert expected in str(info.value)
    assert str(path) in str(info.value) or "nowhere.yaml" in str(info.value)


def test_cli_rejects_a_bad_cell_in_one_line_before_anything_runs(tmp_path: Path) -> None:
    path = write(tmp_path, FAST + "grid:\n  seed: [0, 1]\n  train.batch_size: [16, 0]\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(path), "--output", str(out), "-q"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "grid cell seed=0 train.batch_size=0: train.batch_size" in lines[0]
    assert not out.exists()
    result = runner.invoke(app, ["sweep", str(path), "--workers", "0", "--output", str(out)])
    assert result.exit_code == 2 and result.stderr.strip() == "error: --workers: need at least 1 worker"


def test_set_on_the_command_line_overrides_every_cell_after_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, FAST + "grid: {seed: [0, 1]}\n")
    plain = expand(load_sweep(path))
    cells = expand(load_sweep(path, ["train.epochs=3", "train.lr=0.05"]))
    assert [c.protocol.train.epochs for c in cells] == [3, 3]  # the file said 1
    assert [c.protocol.train.lr for c in cells] == [0.05, 0.05]
    assert cells[0].overrides[-3:] == ("train.epochs=3", "train.lr=0.05", "seed=0")
    assert {c.key for c in cells}.isdisjoint(c.key for c in plain)  # stored apart from the plain sweep's


@pytest.mark.parametrize(
    ("sets", "expected"),
    [(["seed=3"], "error: --set: seed is a grid axis of"),
     (["train.epochs"], "error: --set: expected FIELD=VALUE, got 'train.epochs'"),
     (["train.epochs=0"], "error: --set: train.epochs: Input should be greater than or equal to 1")],
)
def test_cli_bad_set_is_one_line(tmp_path: Path, sets: list[str], expected: str) -> None:
    path = write(tmp_path, FAST + "grid: {seed: [0, 1]}\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(path), "--output", str(out), "-q",
                                 *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(expected), result.stderr
    assert not out.exists()


# --- store, table, figures (no Dask) -------------------------------------------------------------


def _fake_outcome(accuracy: float, layers: int, **extra: Any) -> dict[str, Any]:
    return {"status": "complete", "started_at": 1.0, "worker": "w",
            "result": {"run_uid": "u", "test_accuracy": accuracy, "layer_accuracy": [accuracy] * layers,
                       "evaluations": 100, "wall_s": 0.5, **extra}}


def test_store_records_table_and_figures(tmp_path: Path) -> None:
    path = write(tmp_path, FAST + "grid:\n  method: [ff-dd, bp-dd]\n  network.layers: [1, 2]\n  seed: [0, 1]\n")
    sweep = load_sweep(path)
    cells = expand(sweep)
    store = ResultStore(tmp_path / "out")
    for i, cell in enumerate(cells[:-1]):
        store.put(make_record(cell, _fake_outcome(0.5 + 0.01 * i, cell.values["network.layers"], r2=0.1 * i), None))
    store.put(make_record(cells[-1], {"status": "failed", "error": "ValueError: boom"}, None))
    (store.cells / ".junk.tmp").write_text("{half")  # what a kill mid-write leaves: ignored
    todo = plan(cells, store)
    assert len(todo.done) == 7 and todo.todo == [cells[-1]] and todo.retried == 1
    again = make_record(cells[-1], _fake_outcome(0.9, 2), store.get(cells[-1].key))
    assert again["runs"] == 2

    table = results_table(sweep, cells, store.records(cells))
    assert table.axes == ["method", "network.layers", "seed"]
    assert table.keys == ["test_accuracy", "layer_accuracy", "evaluations", "wall_s", "r2"]
    assert table.lengths == {"layer_accuracy": 2}
    write_csv(table, tmp_path / "results.csv")
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert len(rows) == 8
    assert rows[2]["layer_accuracy_1"] == "0.52" and rows[0]["layer_accuracy_1"] == ""
    assert rows[-1]["status"] == "failed" and rows[-1]["error"] == "ValueError: boom" and rows[-1]["r2"] == ""
    assert "run_uid" not in rows[0]
    text = markdown(table, "t")
    assert "| method | network.layers | seed | status | test_accuracy | layer_accuracy |" in text
    assert "| ff-dd | 2 | 0 | complete | 0.5200 | 0.5200 0.5200 | 100 | 0.5000 | 0.2000 | - |" in text

    complete = table.complete()
    assert x_axes(sweep.grid) == ["network.layers"]
    data = series(sweep.grid, complete, "network.layers", "test_accuracy")
    assert list(data) == ["ff-dd", "bp-dd"]
    (line, points), = data["ff-dd"].items()
    assert line == () and points[0] == (1, pytest.approx(0.505), 0.5, 0.51, 2)
    assert data["bp-dd"][()][1] == (2, 0.56, 0.56, 0.56, 1)  # the failed seed is left out
    paths = write_figures(sweep.grid, complete, tmp_path, "t")
    assert [p.name for p in paths] == ["test_accuracy_vs_network_layers.png", "r2_vs_network_layers.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_a_regression_result_reports_r2_as_run_json_does_and_its_table_shows_it(tmp_path: Path) -> None:
    result = RunResult(run_uid="u", test_accuracy=np.float64(0.8), layer_accuracy=[0.5, 0.8], metric="r2",
                       evaluations=10, wall_s=0.1, prototypes=[np.zeros((1, 3))], parameters=[np.zeros(3)])
    fields = result_fields(result)  # arrays left out
    assert fields == {"run_uid": "u", "test_accuracy": None, "layer_accuracy": None, "metric": "r2",
                      "evaluations": 10, "wall_s": 0.1, "r2": 0.8, "layer_r2": [0.5, 0.8]}
    sweep = load_sweep(write(tmp_path, FAST + "grid: {seed: [0, 1]}\n"))
    cells = expand(sweep)
    records = [make_record(c, {"status": "complete", "result": fields}, None) for c in cells]
    table = results_table(sweep, cells, records)
    assert csv_columns(table) == ["seed", "status", "test_accuracy", "evaluations", "wall_s", "metric", "r2",
                                  "layer_r2_0", "layer_r2_1", "error", "cell"]
    assert "| seed | evaluations | wall_s | metric | r2 | layer_r2 |" in markdown(table)
    paths = write_figures({"seed": [0, 1], "train.lr": [0.1, 0.01]}, [
        {"seed": s, "train.lr": lr, "r2": 0.5 + s + lr} for s in (0, 1) for lr in (0.1, 0.01)], tmp_path)
    assert [p.name for p in paths] == ["r2_vs_train_lr.png"]


def test_which_axes_are_plotted() -> None:
    assert x_axes({"method": ["a", "b"], "network.width": [10, 50], "network.layers": [1, 2]}) == ["network.layers"]
    assert x_axes({"train.lr": [0.1, 0.01], "seed": [0, 1], "method": ["a"]}) == ["train.lr"]
    assert x_axes({"train.lr": [0.1, 0.01], "network.width": [10, 50]}) == []
    assert x_axes({"network.layers": [2], "seed": [0, 1]}) == []


def test_a_section_value_is_labelled_by_what_differs() -> None:
    values = [{"set": "franke-2d", "encoding": "raw"}, {"set": "mnist", "target": "scalar", "encoding": "raw"}]
    assert value_label("data", values[0], values) == "franke-2d"
    assert value_label("data", values[1], values) == "mnist\ntarget=scalar"
    assert value_label("seed", 3, [3]) == "3"


def test_bars_pool_seeds_per_task_and_method(tmp_path: Path) -> None:
    tasks = [{"set": "a"}, {"set": "b"}]
    grid = {"method": ["ff-dd", "bp-dd"], "data": tasks, "seed": [0, 1]}
    rows = [{"method": m, "data": t, "seed": s, "r2": 0.9 - 0.1 * s - (0.5 if m == "bp-dd" else 0)}
            for m in grid["method"] for t in tasks for s in (0, 1)]
    rows.append({"method": "ff-dd", "data": tasks[0], "seed": 2, "r2": None})  # no number: left out
    groups, bars, stats = bar_groups(grid, rows, "r2")
    assert groups == ["a", "b"] and bars == ["ff-dd", "bp-dd"]
    assert stats[("a", "ff-dd")] == (pytest.approx(0.85), 0.8, 0.9, 2)
    assert stats[("b", "bp-dd")][0] == pytest.approx(0.35)
    paths = write_figures(grid, rows, tmp_path, "t")
    assert [p.name for p in paths] == ["r2_by_data_method.png"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"


def test_a_cell_that_raises_comes_back_failed_with_its_error(tmp_path: Path) -> None:
    cells = expand(load_sweep(write(tmp_path, FAST + "grid: {data.set: [nosuchset]}\n")))
    outcome = run_cell(cells[0].document, "cell x", str(tmp_path))
    assert outcome["status"] == "failed" and "nosuchset" in outcome["error"] and outcome["worker"]


# --- on Dask -------------------------------------------------------------------------------------


#: What the caller's environment says; a local cluster's workers get the sweep's one thread anyway.
CALLER_THREADS = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}


@pytest.fixture(scope="module")
def client() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CALLER_THREADS.items():
            patch.setenv(name, value)
        with dask_client(workers=2) as c:
            yield c


def test_local_cluster_binds_to_loopback_with_two_single_threaded_workers(client: Any) -> None:
    info = client.scheduler_info()
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert len(info["workers"]) == 2
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
    assert all(w["nthreads"] == 1 for w in info["workers"].values())
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")
    environ = client.run(lambda: {k: os.environ.get(k) for k in names})
    expected = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
                "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_")}
    assert list(environ.values()) == [expected] * 2  # whatever this process's environment says
    assert {k: os.environ.get(k) for k in CALLER_THREADS} == CALLER_THREADS  # the caller's own, as it was
    # every socket the cluster listens on (scheduler, its HTTP server, nannies, workers): loopback
    me = psutil.Process()
    listening = [c.laddr for p in [me, *me.children(recursive=True)]
                 for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert len(listening) >= 5 and {addr.ip for addr in listening} == {"127.0.0.1"}
    assert 8787 not in {addr.port for addr in listening}


def test_a_failing_cell_is_recorded_and_the_others_finish(client: Any, tmp_path: Path) -> None:
    cells = expand(load_sweep(write(tmp_path, FAST + "grid: {data.set: [digits, nosuchset]}\n")))
    store = ResultStore(tmp_path / "out")
    seen = []
    records = run_cells(client, cells, store, None, lambda cell, record: seen.append(cell.key))
    assert sorted(seen) == sorted(c.key for c in cells)
    status = {r["values"]["data.set"]: r for r in records}
    assert status["digits"]["status"] == "complete" and status["digits"]["result"]["evaluations"] > 0
    assert 0 < status["digits"]["cpu_s"] and 0 < status["digits"]["cell_s"] < 60
    assert status["nosuchset"]["status"] == "failed" and "nosuchset" in status["nosuchset"]["error"]
    assert store.get(cells[1].key)["status"] == "failed"


def test_tiny_sweep_on_the_cli_writes_csv_markdown_png_and_skips_finished_cells(client: Any, tmp_path: Path) -> None:
    path = write(tmp_path, FAST + "grid:\n  method: [ff-dd, bp-dd]\n  network.layers: [1, 2]\n")
    out = tmp_path / "out"
    args = ["sweep", str(path), "--scheduler", client.scheduler.address, "--output", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["cells"] == 4 and summary["ran"] == 4 and summary["skipped"] == 0 and summary["failed"] == 0
    assert "skipped 0 finished, 4 to run on the cluster at tcp://127.0.0.1" in result.stderr
    # stderr is no terminal here: a plain timestamped line per finished cell
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d cell 4/4 [^\n]+: complete$", result.stderr, re.M)
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["method"], r["network.layers"], r["status"]) for r in rows] == [
        ("ff-dd", "1", "complete"), ("ff-dd", "2", "complete"), ("bp-dd", "1", "complete"), ("bp-dd", "2", "complete")]
    assert all(0 <= float(r["test_accuracy"]) <= 1 and int(r["evaluations"]) > 0 for r in rows)
    assert rows[1]["layer_accuracy_1"] != "" and rows[2]["layer_accuracy_1"] == ""
    assert (out / "results.md").read_text().count("\n| ") == 6  # header, rule, 4 cells
    assert (out / "test_accuracy_vs_network_layers.png").read_bytes()[:4] == b"\x89PNG"
    assert len(json.loads((out / "sweep.json").read_text())["cells"]) == 4

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["skipped"] == 4
    assert "skipped 4 finished, 0 to run" in result.stderr


def test_a_failed_cell_makes_exit_code_1_is_in_the_table_and_is_retried(client: Any, tmp_path: Path) -> None:
    path = write(tmp_path, FAST + "grid: {data.set: [digits, nosuchset]}\n")
    out = tmp_path / "out"
    args = ["sweep", str(path), "--scheduler", client.scheduler.address, "--output", str(out), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "failed data.set=nosuchset: DataError:" in result.stderr  # said as it happens, even with -q
    assert "1 cell failed" in result.stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["status"] for r in rows] == ["complete", "failed"] and "nosuchset" in rows[1]["error"]
    assert "| data.set | status |" in (out / "results.md").read_text()
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "skipped 1 finished, 1 to run (1 failed before)" in result.stderr
    assert json.loads((out / "cells" / f"{rows[1]['cell']}.json").read_text())["runs"] == 2


# --- resume after SIGKILL --------------------------------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def test_a_killed_sweep_resumes_without_recomputing_finished_cells(tmp_path: Path) -> None:
    # six cells of about half a second each, on one worker: the kill lands midway
    heavy = FAST.replace("network.width: 16", "network.width: 32").replace("train.epochs: 1", "train.epochs: 2")
    heavy = heavy.replace("  data.train_limit: 200\n", "")
    path = write(tmp_path, heavy + "grid:\n  network.layers: [1, 2, 3]\n  seed: [0, 1]\n")
    out = tmp_path / "out"
    cells_dir = out / "cells"
    proc = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "sweep", str(path), "--workers", "1",
                             "--output", str(out), "-q"], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pgid = proc.pid
    try:
        deadline = time.monotonic() + 60
        stored: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            stored = list(cells_dir.glob("*.json")) if cells_dir.exists() else []
            if len(stored) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # the worker (and its nanny's process) exit by themselves when the sweep's process dies
        deadline = time.monotonic() + 20
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _group_members(pgid) == [], "dask processes outlived the killed sweep"
    finally:
        if _group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)
        proc.stderr.close()

    before = {p.stem: json.loads(p.read_text()) for p in cells_dir.glob("*.json")}
    assert 2 <= len(before) < 6
    assert all(r["status"] == "complete" and r["runs"] == 1 for r in before.values())

    result = runner.invoke(app, ["sweep", str(path), "--workers", "2", "--output", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    assert f"skipped {len(before)} finished, {6 - len(before)} to run" in result.stderr
    after = {p.stem: json.loads(p.read_text()) for p in cells_dir.glob("*.json")}
    assert len(after) == 6 and all(r["status"] == "complete" and r["runs"] == 1 for r in after.values())
    for key, record in before.items():
        assert after[key] == record  # not recomputed: same result, same timestamps
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 6 and {r["status"] for r in rows} == {"complete"}
    assert {(r["network.layers"], r["seed"]) for r in rows} == {(str(l), str(s)) for l in (1, 2, 3) for s in (0, 1)}

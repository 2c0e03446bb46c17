"""The SQLite run store: runs, steps, measurements and arrays survive; a run without stop is incomplete."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

from ffzero_lab.store.runstore import RunStore, StoreSink


def feed(sink: StoreSink, uid: str, stop: bool = True) -> None:
    sink("start", {"run_uid": uid, "time": 1.0, "protocol": {"name": "t", "method": "ff-dd"}})
    sink("arrays", {"run_uid": uid, "time": 1.0, "arrays": {"prototypes/0": np.eye(3)}})
    record = {"samples": np.array([4, 2]), "readings": np.ones((2, 2, 3)), "base": np.zeros(5),
              "t_start": 1.5, "t_end": 1.6, "direction_seed": 77, "direction_draw": 0, "directions": 1,
              "eps": 0.01, "checkpoint": {"theta": np.full(5, 0.5), "optimizer": {"m": np.ones(5)}}}
    sink("step", {"run_uid": uid, "time": 1.7, "layer": 0, "epoch": 0, "step": 0, "version": 0, "loss": 0.4,
                  "accuracy": 0.5, "lr": 0.01, "evaluations": 40, "record": record})
    sink("epoch", {"run_uid": uid, "time": 2.0, "layer": 0, "epoch": 0, "loss": 0.5, "test_accuracy": 0.7,
                   "evaluations": 100, "evaluations_per_s": 10.0})
    if stop:
        sink("stop", {"run_uid": uid, "time": 3.0, "exit_status": "complete", "test_accuracy": 0.7,
                      "layer_accuracy": [0.7], "evaluations": 120, "wall_s": 2.0})


def test_round_trip(tmp_path: Path) -> None:
    sink = StoreSink(tmp_path, "dry-run", "name: t\n", "t.yaml", "0.1.0")
    feed(sink, "abc123")
    sink.close()
    store = RunStore(tmp_path)
    [run] = store.list_runs()
    assert run.status == "complete" and run.test_accuracy == 0.7 and run.layer_accuracy == [0.7]
    assert store.find("1") == run.id == store.find("abc")
    np.testing.assert_array_equal(store.array(run.id, "prototypes/0"), np.eye(3))
    assert store.epochs(run.id)[0]["loss"] == 0.5
    [step] = store.steps(run.id)
    assert step["loss"] == 0.4 and step["accuracy"] == 0.5 and step["version"] == 0
    m = store.measurement(run.id, 0, 0)
    assert m["direction_seed"] == 77 and m["samples"].tolist() == [4, 2]
    assert m["readings"].dtype == np.float32 and m["readings"].shape == (2, 2, 3)
    np.testing.assert_array_equal(store.parameters_at(run.id, 0, 0), np.zeros(5))
    ck = store.checkpoint(run.id)
    assert ck is not None and ck.layer == 0 and ck.step == 0 and ck.evaluations == 40
    np.testing.assert_array_equal(ck.theta, np.full(5, 0.5))
    np.testing.assert_array_equal(ck.optimizer["m"], np.ones(5))
    store.close()
    # readable by the plain sqlite3 module (as by the sqlite3 CLI or pandas), WAL mode
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT exit_status FROM runs").fetchone()[0] == "complete"


def test_run_killed_without_stop_is_incomplete(tmp_path: Path) -> None:
    """A run whose process died before its stop record shows as incomplete, its steps kept."""
    code = (
        "import sys, os; from pathlib import Path\n"
        "sys.path.insert(0, %r)\n"
        "from ffzero_lab.store.runstore import StoreSink\n"
        "from test_runstore import feed\n"
        "s = StoreSink(Path(%r), 'dry-run', None, None, '0')\n"
        "feed(s, 'dead', stop=False)\n"
        "s.close()\n"
        "os._exit(0)\n"
    ) % (str(Path(__file__).parent), str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == 0
    store = RunStore(tmp_path)
    [run] = store.list_runs()
    assert run.status == "incomplete"
    assert len(store.epochs(run.id)) == 1 and len(store.steps(run.id)) == 1


def test_own_process_without_stop_is_running(tmp_path: Path) -> None:
    sink = StoreSink(tmp_path, "dry-run", None, None, "0")
    feed(sink, "live", stop=False)
    sink.close()
    assert RunStore(tmp_path).list_runs()[0].status == "running"

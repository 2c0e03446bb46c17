"""The SQLite run store: runs, epochs and arrays survive; a run without stop is incomplete."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

from ffzero_lab.runstore import RunStore, StoreSink


def feed(sink: StoreSink, uid: str, stop: bool = True) -> None:
    sink("start", {"run_uid": uid, "time": 1.0, "protocol": {"name": "t"}})
    sink("arrays", {"run_uid": uid, "time": 1.0, "arrays": {"prototypes/0": np.eye(3)}})
    sink("epoch", {"run_uid": uid, "time": 2.0, "layer": 0, "epoch": 0, "loss": 0.5, "test_accuracy": 0.7,
                   "evaluations": 100, "evaluations_per_s": 10.0})
    if stop:
        sink("stop", {"run_uid": uid, "time": 3.0, "exit_status": "complete", "test_accuracy": 0.7,
                      "layer_accuracy": [0.7], "evaluations": 120, "wall_s": 2.0})


def test_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    sink = StoreSink(store, "dry-run", "name: t\n", "t.yaml", "0.1.0")
    feed(sink, "abc123")
    [run] = store.list_runs()
    assert run.status == "complete" and run.test_accuracy == 0.7 and run.layer_accuracy == [0.7]
    assert store.find("1") == run.id == store.find("abc")
    np.testing.assert_array_equal(store.array(run.id, "prototypes/0"), np.eye(3))
    assert store.epochs(run.id)[0]["loss"] == 0.5
    store.close()
    # readable by the plain sqlite3 module (as by the sqlite3 CLI or pandas), WAL mode
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT exit_status FROM runs").fetchone()[0] == "complete"


def test_run_killed_without_stop_is_incomplete(tmp_path: Path) -> None:
    """A run whose process died before its stop record shows as incomplete, its epochs kept."""
    code = (
        "import sys; from pathlib import Path; import numpy as np\n"
        "sys.path.insert(0, %r)\n"
        "from ffzero_lab.runstore import RunStore, StoreSink\n"
        "from test_runstore import feed\n"
        "s = StoreSink(RunStore(Path(%r)), 'dry-run', None, None, '0')\n"
        "feed(s, 'dead', stop=False)\n"
    ) % (str(Path(__file__).parent), str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == 0
    store = RunStore(tmp_path)
    [run] = store.list_runs()
    assert run.status == "incomplete"
    assert len(store.epochs(run.id)) == 1


def test_own_process_without_stop_is_running(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    feed(StoreSink(store, "dry-run", None, None, "0"), "live", stop=False)
    assert store.list_runs()[0].status == "running"

"""Crash-safe resume: SIGKILL a dry run at a random step, resume it, get the same parameters."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import UserError
from ffzero_lab.ffzero.perturbation import settings_per_step
from ffzero_lab.store.lock import RunLock
from ffzero_lab.store.runstore import RunStore

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--set", "train.epochs=4", "--set", "train.batch_size=32", "--set", "data.test_limit=100",
        "--set", "data.train_limit=640",
        "--set", "device.settings.init=random", "--set", "record.measurements=true"]
runner = CliRunner()


def committed_steps(db_path: Path) -> int:
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
    except sqlite3.Error:
        return 0


def final_parameters(runs_dir: Path, run_id: int) -> list[np.ndarray]:
    store = RunStore(runs_dir)
    try:
        return [store.array(run_id, f"parameters/{i}") for i in range(2)]
    finally:
        store.close()


@pytest.mark.parametrize("method", ["ff-dd", "bp-dd"])
def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path, method: str) -> None:
    args = [str(ROOT / "protocols" / "quickstart.yaml"), *ARGS, "--set", f"method={method}"]
    reference_dir, crash_dir = tmp_path / "reference", tmp_path / "crash"
    result = runner.invoke(app, ["dry-run", *args, "--json", "-q", "--runs-dir", str(reference_dir)])
    assert result.exit_code == 0, result.output
    total = committed_steps(reference_dir / "runs.sqlite")
    reference = final_parameters(reference_dir, 1)

    target = int(np.random.default_rng().integers(3, total - 3))
    proc = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "dry-run", *args, "-q", "--runs-dir", str(crash_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while committed_steps(crash_dir / "runs.sqlite") < target:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    killed_at = committed_steps(crash_dir / "runs.sqlite")
    assert target <= killed_at < total

    listed = json.loads(runner.invoke(app, ["runs", "list", "--json", "--runs-dir", str(crash_dir)]).stdout)
    assert listed["runs"][0]["status"] == "incomplete"

    resumed = runner.invoke(app, ["resume", "1", "--json", "-q", "--runs-dir", str(crash_dir)])
    assert resumed.exit_code == 0, resumed.output
    for got, want in zip(final_parameters(crash_dir, 1), reference):
        assert np.array_equal(got, want)  # bit for bit
    store = RunStore(crash_dir)
    steps = store.steps(1)
    summary = store.summary(1)
    store.close()
    assert summary.status == "complete" and summary.resumes == 1
    versions = {}
    for s in steps:
        versions.setdefault(s["layer"], []).append(s["version"])
    assert all(sorted(v) == list(range(len(v))) for v in versions.values())  # no committed step missing
    assert len(steps) == total


def test_resume_refuses_a_complete_run(tmp_path: Path) -> None:
    args = [str(ROOT / "protocols" / "quickstart.yaml"), "--set", "train.epochs=1", "--set", "data.train_limit=64",
            "--set", "device.settings.init=random"]
    assert runner.invoke(app, ["dry-run", *args, "-q", "--runs-dir", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["resume", "1", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "complete" in result.stderr


@pytest.mark.parametrize("estimator", [
    ["train.difference=central", "train.direction_kind=gaussian"],
    ["train.difference=forward", "train.direction_kind=orthogonal", "train.calibrate=true"],
])
def test_recorded_step_rebuilds_its_exact_settings(tmp_path: Path, estimator: list[str]) -> None:
    """From the store alone: the settings of a step, evaluated again, give the recorded readings
    (the paper's estimator, and forward differences along orthogonal directions with a calibrated eps)."""
    from ffzero_lab.config.protocol import parse_protocol
    from ffzero_lab.run.prepare import prepare
    from ffzero_lab.store.replay import rebuild_settings

    args = [str(ROOT / "protocols" / "quickstart.yaml"), "--set", "train.epochs=1", "--set", "data.train_limit=96",
            "--set", "device.settings.init=random", "--set", "record.measurements=true"]
    args += [a for o in estimator for a in ("--set", o)]
    assert runner.invoke(app, ["dry-run", *args, "-q", "--runs-dir", str(tmp_path)]).exit_code == 0
    store = RunStore(tmp_path)
    protocol = parse_protocol(store.protocol(1), "run 1")
    prepared = prepare(protocol, "run 1", None)
    from ffzero_lab.ffzero.encoding import encode

    x = encode(prepared.dataset.x_train[:96], protocol.data.encoding)
    layer = prepared.network.layers[0]
    for version in (0, 1):
        settings = rebuild_settings(store, 1, 0, version)
        m = store.measurement(1, 0, version)
        assert settings.shape == (settings_per_step(protocol.train.directions, protocol.train.difference),
                                  layer.n_params)
        again = layer.evaluate(x[m["samples"]], settings)
        np.testing.assert_allclose(again.astype(np.float32), m["readings"], rtol=1e-6, atol=1e-9)
    store.close()


def _dead_run(folder: Path, args: list[str]) -> None:
    """A dry run SIGKILLed after its first committed steps: incomplete, resumable."""
    proc = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "dry-run", *args, "-q", "--runs-dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while committed_steps(folder / "runs.sqlite") < 3:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_two_concurrent_resumes_exactly_one_proceeds(tmp_path: Path) -> None:
    args = [str(ROOT / "protocols" / "quickstart.yaml"), *ARGS, "--set", "train.epochs=200"]
    _dead_run(tmp_path, args)
    first = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "resume", "1", "-q", "--runs-dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "locks" / "run-1.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and f"process {first.pid} " in lock.read_text()):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        second = runner.invoke(app, ["resume", "1", "-q", "--runs-dir", str(tmp_path)])
        assert second.exit_code == 2
        assert f"run 1 is held by process {first.pid} on " in second.stderr
        assert len([line for line in second.stderr.splitlines() if line.strip()]) == 1
        assert first.poll() is None  # the first goes on
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    # the holder is gone (whatever way it ended): the lock is free again, with no file to clear
    with RunLock(tmp_path, 1):
        with pytest.raises(UserError, match=f"run 1 is held by process {os.getpid()} "):
            RunLock(tmp_path, 1).acquire()

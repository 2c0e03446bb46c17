"""Progress when stderr is no terminal: plain timestamped lines, written while the run goes."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

from ffzero_lab.live.progress import PlainProgressSink

ROOT = Path(__file__).resolve().parents[2]
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def test_dry_run_to_a_log_file_writes_progress_before_it_ends(tmp_path: Path) -> None:
    """``ffzero-lab dry-run protocols/quickstart.yaml --set train.epochs=2 2> log.txt``: the log
    holds epoch lines while the run is still going."""
    script = Path(sys.executable).parent / "ffzero-lab"
    log = tmp_path / "log.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [str(script), "dry-run", str(ROOT / "protocols" / "quickstart.yaml"), "--set", "train.epochs=2",
             "--runs-dir", str(tmp_path / "runs")],
            stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path)
        try:
            seen_while_running = None
            while proc.poll() is None:
                lines = log.read_text().splitlines()
                if any(" epoch 1/2 done " in line for line in lines):
                    seen_while_running = proc.poll() is None  # the run was still going
                    break
                time.sleep(0.1)
            assert proc.wait(timeout=600) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert seen_while_running, log.read_text()
    lines = log.read_text().splitlines()
    progress = [line for line in lines if STAMP.match(line)]
    # 1,347 training digits less the 15 % validation split, in batches of 16: 72 steps an epoch
    assert progress[0].endswith("start: 2 epochs of 72 steps, 2 layers")
    assert sum(" done " in line for line in progress) == 4  # 2 layers x 2 epochs
    assert progress[-1].endswith("stop: complete")
    assert "\x1b[" not in log.read_text()  # no terminal control codes in a file


def test_plain_progress_lines_at_most_every_interval() -> None:
    now = [0.0]
    stream = io.StringIO()
    sink = PlainProgressSink(stream, interval_s=10.0, clock=lambda: now[0])
    sink("start", {"protocol": {"train": {"epochs": 1}}, "steps_per_epoch": 100, "layers": [{}]})
    for step in range(100):
        now[0] = step * 1.0  # a step a second
        sink("step", {"layer": 0, "epoch": 0, "step": step, "loss": 0.5})
    sink("epoch", {"layer": 0, "epoch": 0, "loss": 0.25, "test_accuracy": 0.5, "evaluations_per_s": 1234.0})
    sink("stop", {"exit_status": "complete"})
    lines = stream.getvalue().splitlines()
    steps = [line for line in lines if " step " in line]
    assert len(steps) == 9  # at 10, 20, ..., 90 s
    assert "step 11/100 loss 0.5000" in steps[0]
    assert lines[-2].endswith("layer 0 epoch 1/1 done loss 0.2500 acc 0.500 1,234 eval/s")
    assert all(STAMP.match(line) for line in lines)


def test_plain_progress_states_instrument_time_beside_wall_time() -> None:
    """On a rig every step carries its instrument time (the lab-time ledger); the epoch and stop
    lines add it up beside the wall time. A simulated run's steps carry none and say nothing."""
    now = [0.0]
    stream = io.StringIO()
    sink = PlainProgressSink(stream, interval_s=1e9, clock=lambda: now[0])
    sink("start", {"protocol": {"train": {"epochs": 1}}, "steps_per_epoch": 2, "layers": [0]})
    for step in range(2):
        now[0] += 1.5
        sink("step", {"layer": 0, "epoch": 0, "step": step, "loss": 0.5, "instrument_s": 0.25})
    sink("epoch", {"layer": 0, "epoch": 0, "loss": 0.5, "test_accuracy": 0.5, "evaluations_per_s": 10.0})
    sink("stop", {"exit_status": "success"})
    lines = stream.getvalue().splitlines()
    assert lines[1].endswith("wall 3.0 s, instruments 0.500 s") and lines[2].endswith("instruments 0.500 s")
    plain = io.StringIO()
    sink = PlainProgressSink(plain, interval_s=1e9)
    sink("start", {"protocol": {"train": {"epochs": 1}}, "steps_per_epoch": 1, "layers": [0]})
    sink("step", {"layer": 0, "epoch": 0, "step": 0, "loss": 0.5})
    sink("stop", {"exit_status": "success"})
    assert "instruments" not in plain.getvalue()

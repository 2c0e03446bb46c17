"""Live documents over ZMQ: a real subscriber process gets a run's documents in order; a
subscriber that never reads does not stop the run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.live.publisher import Publisher, is_loopback

ROOT = Path(__file__).resolve().parents[2]
QUICK = [str(ROOT / "protocols" / "quickstart.yaml"), "--set", "train.epochs=2", "--set", "data.train_limit=256",
         "--set", "data.test_limit=64", "--set", "device.settings.init=random", "-q"]
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_subscribed(address: str, timeout_s: float = 120.0) -> None:
    """Wait until a subscriber process has connected to ``address`` (it starts slowly on a busy
    machine, and a run waits 5 s at most): a stand-in publisher there sees its subscription, then
    closes; the subscriber reconnects to the run's publisher by itself."""
    ctx = zmq.Context()
    probe = Publisher.bind(address, context=ctx)
    try:
        assert probe.wait_for_subscribers(1, timeout_s) == 1, "the subscriber never connected"
    finally:
        probe.socket.close(0)
        ctx.term()


def test_subscriber_process_receives_documents_in_order(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "docs.jsonl"
    with out.open("w") as sink:
        monitor = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "monitor", address, "--jsonl",
                                    "--exit-on-stop", "--timeout", "60"], stdout=sink, stderr=subprocess.PIPE)
        try:
            wait_until_subscribed(address)
            result = runner.invoke(app, ["dry-run", *QUICK, "--runs-dir", str(tmp_path / "runs"),
                                         "--publish", address, "--wait-subscribers", "1"])
            assert result.exit_code == 0, result.output
            monitor.wait(timeout=60)
        finally:
            if monitor.poll() is None:
                monitor.kill()
                monitor.wait()
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    names = [d["name"] for d in docs]
    assert names[0] == "start" and names[-1] == "stop"
    assert names.count("descriptor") == 3 and names.count("start") == 1  # step, epoch, taps
    start, stop = docs[0]["doc"], docs[-1]["doc"]
    assert stop["run_start"] == start["uid"] and stop["exit_status"] == "success"
    descriptors = {d["doc"]["uid"]: d["doc"]["name"] for d in docs if d["name"] == "descriptor"}
    events = [d["doc"] for d in docs if d["name"] == "event"]
    for stream in ("step", "epoch", "taps"):
        seq = [e["seq_num"] for e in events if descriptors[e["descriptor"]] == stream]
        assert seq == list(range(1, len(seq) + 1))  # in order, none missing
    # 2 layers x 2 epochs x 14 steps (218 of the 256 samples train, 38 are the validation split; batch 16)
    assert stop["num_events"] == {"step": 2 * 2 * 14, "epoch": 2 * 2, "taps": 2 * 2 * 14}
    epochs = [e["data"] for e in events if descriptors[e["descriptor"]] == "epoch"]
    assert [(e["layer"], e["epoch"]) for e in epochs] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_a_subscriber_that_never_reads_does_not_block_the_run(tmp_path: Path) -> None:
    """With its queue full the publisher drops documents (counted) instead of waiting."""
    address = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    publisher = Publisher.bind(address, hwm=5, context=ctx)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 5)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        assert publisher.wait_for_subscribers(1, 5.0) == 1
        publisher("start", {"run_uid": "r", "time": 0.0, "protocol": {}})
        started = time.monotonic()
        for i in range(20_000):  # never read by the subscriber
            publisher("step", {"run_uid": "r", "time": float(i), "layer": 0, "epoch": 0, "step": i, "version": i,
                               "loss": 0.1, "accuracy": 0.5, "lr": 0.01, "evaluations": i})
        assert time.monotonic() - started < 30  # it did not wait on the subscriber
        assert publisher.dropped > 0 and publisher.sent + publisher.dropped == 20_000 + 2  # + start, descriptor
    finally:
        sub.close(0)
        publisher.socket.close(0)
        ctx.term()


def test_dry_run_with_a_stalled_subscriber_completes(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 1)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        result = runner.invoke(app, ["dry-run", *QUICK, "--runs-dir", str(tmp_path), "--publish", address,
                                     "--wait-subscribers", "1", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.splitlines()[-1])["test_accuracy"] > 0
    finally:
        sub.close(0)
        ctx.term()


def test_publish_address_in_use_is_a_clean_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        result = runner.invoke(app, ["dry-run", *QUICK, "--runs-dir", str(tmp_path), "--publish",
                                     f"tcp://127.0.0.1:{port}"])
    assert result.exit_code == 2 and "cannot publish" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(("address", "loopback"), [("tcp://127.0.0.2:5", True), ("tcp://localhost:5", True),
                                                   ("tcp://[::1]:5", True), ("tcp://10.0.0.1:5", False),
                                                   ("tcp://*:5", False), ("ipc:///tmp/x", True)])
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_monitor_bad_address_is_one_line() -> None:
    result = runner.invoke(app, ["monitor", "notanaddress", "--timeout", "1"])
    assert result.exit_code == 2 and "cannot connect to notanaddress" in result.stderr
    assert "Traceback" not in result.output

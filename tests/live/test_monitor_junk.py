"""``monitor`` fed junk on the publish socket: it ignores and counts every malformed message, keeps
showing the run, and never crashes (dashboard, --jsonl in-process, and the real command)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading

import pytest
import zmq
from rich.console import Console

from ffzero_lab.live.monitor import Dashboard, Malformed, parse_message, watch
from ffzero_lab.live.publisher import TOPIC, Publisher
from tests.live.test_remote import free_port

START = {"run_uid": "r" * 32, "time": 100.0, "protocol": {"name": "[/] [bold]x", "method": "ff-dd",
                                                          "train": {"epochs": 2}},
         "layers": [{"n_params": 4, "ports": 2}], "steps_per_epoch": 3,
         "device": {"driver": "[/red]", "settings": {"a": "[link=x]"}}}
STEP = {"time": 101.0, "layer": 0, "epoch": 0, "step": 1, "version": 1, "loss": 0.5, "accuracy": 0.25, "lr": 0.01,
        "evaluations": 40}
STOP = {"time": 103.0, "exit_status": "complete", "reason": "[/]", "test_accuracy": 0.9}


def junk(step_descriptor: str | None) -> list[list[bytes]]:
    """Malformed messages that a SUB socket subscribed to ``ffzero`` receives."""
    def doc(value) -> bytes:
        return json.dumps(value).encode()

    return [
        [TOPIC],
        [TOPIC, b"start"],
        [TOPIC, b"start", b"{}", b"extra"],
        [TOPIC + b"X", b"start", doc(START)],  # the topic is a prefix: this one arrives
        [TOPIC, b"\xff\xfe", b"{}"],
        [TOPIC, b"gossip", b"{}"],
        [TOPIC, b"start", b"{not json"],
        [TOPIC, b"start", b"\xff\xfe{}"],
        [TOPIC, b"start", b"[" * 50_000],
        [TOPIC, b"start", b"[1, 2]"],
        [TOPIC, b"stop", b'"complete"'],
        [TOPIC, b"start", doc({"uid": "u", "time": 1.0})],
        [TOPIC, b"start", doc({**START, "uid": "u", "protocol": {"method": "ff-dd", "train": {"epochs": "x"}}})],
        [TOPIC, b"start", doc({**START, "uid": "u", "steps_per_epoch": 10**30})],
        [TOPIC, b"start", doc({**START, "uid": "u", "time": "soon"})],
        [TOPIC, b"descriptor", doc({"uid": 5})],
        [TOPIC, b"event", doc({"descriptor": "nobody", "time": 1.0, "data": {}})],
        [TOPIC, b"event", doc({"descriptor": "nobody", "time": 1.0, "data": [1]})],
        [TOPIC, b"stop", doc({"reason": "no status"})],
    ] + ([] if step_descriptor is None else [  # a step event must carry a step's data
        [TOPIC, b"event", doc({"descriptor": step_descriptor, "time": 1.0, "data": {"layer": 0, "loss": "x"}})],
        [TOPIC, b"event", doc({"descriptor": step_descriptor, "time": 1.0, "data": {"layer": None}})],
        [TOPIC, b"event", doc({"descriptor": step_descriptor, "time": 1.0, "data": {"layer": 0, "evaluations": 0.5}})],
    ])


def feed(board: Dashboard, message: list[bytes]) -> bool:
    try:
        board.update(*parse_message(message))
    except Malformed:
        board.malformed += 1
        return False
    return True


def test_the_dashboard_ignores_and_counts_junk() -> None:
    board = Dashboard()
    console = Console(file=io.StringIO(), width=160)
    console.print(board.render())
    publisher_start = {"uid": START["run_uid"], **{k: v for k, v in START.items() if k != "run_uid"}}
    assert feed(board, [TOPIC, b"start", json.dumps(publisher_start).encode()])
    assert feed(board, [TOPIC, b"descriptor", json.dumps({"uid": "d", "name": "step"}).encode()])
    messages = junk("d")
    for message in messages:
        assert not feed(board, message), message
        console.print(board.render())  # never raises, whatever the documents held
    data = {k: STEP[k] for k in ("layer", "epoch", "loss", "accuracy", "evaluations")}
    assert feed(board, [TOPIC, b"event", json.dumps({"descriptor": "d", "time": 101.0, "data": data}).encode()])
    assert feed(board, [TOPIC, b"stop", json.dumps(STOP).encode()])
    console.print(board.render())
    shown = console.file.getvalue()
    assert board.malformed == len(messages) and f"ignored {len(messages)} malformed message(s)" in shown
    assert "[/] [bold]x" in shown and "[/red]" in shown  # a document's text is shown, not taken as markup
    assert board.steps_done == 1 and board.evaluations == 40 and board.stop.exit_status == "complete"


@pytest.fixture
def publisher():
    context = zmq.Context()
    address = f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher.bind(address, context=context)
    try:
        yield pub, address
    finally:
        pub.socket.close(0)
        context.term()


def publish_with_junk(pub: Publisher) -> int:
    """A run's documents with junk before, between and after them; returns how much junk."""
    sent = 0
    for message in junk(None):
        pub.socket.send_multipart(message)
        sent += 1
    pub("start", START)
    pub("step", STEP)
    for message in junk(pub.documents.descriptors["step"]):
        pub.socket.send_multipart(message)
        sent += 1
    pub("step", {**STEP, "step": 2, "evaluations": 80})
    pub("stop", STOP)
    return sent


@pytest.mark.parametrize("jsonl", [True, False])
def test_watch_keeps_going_through_junk(publisher, jsonl: bool) -> None:
    pub, address = publisher
    out, errors = io.StringIO(), io.StringIO()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(
        board=watch(address, out if jsonl else None, exit_on_stop=True, timeout_s=20, errors=errors)))
    thread.start()
    try:
        assert pub.wait_for_subscribers(1, 10.0) == 1
        count = publish_with_junk(pub)
    finally:
        thread.join(timeout=30)
    assert not thread.is_alive()
    board = result["board"]
    assert board.malformed == count and board.steps_done == 2 and board.stop is not None
    if jsonl:
        names = [json.loads(line)["name"] for line in out.getvalue().splitlines()]
        assert names == ["start", "descriptor", "event", "event", "stop"]
        assert errors.getvalue() == f"monitor: ignored {count} malformed message(s)\n"
    else:
        assert errors.getvalue() == ""


def test_the_monitor_command_counts_junk_on_stderr(publisher) -> None:
    pub, address = publisher
    monitor = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "monitor", address, "--jsonl", "--exit-on-stop",
                                "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert pub.wait_for_subscribers(1, 30.0) == 1
        count = publish_with_junk(pub)
        stdout, stderr = monitor.communicate(timeout=60)
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.communicate()
    assert monitor.returncode == 0, stderr
    assert [json.loads(line)["name"] for line in stdout.splitlines()] == ["start", "descriptor", "event", "event",
                                                                         "stop"]
    assert stderr.strip().splitlines() == [f"monitor: ignored {count} malformed message(s)"]

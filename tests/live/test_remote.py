"""A rig served over ZMQ: trained from another process; keys off loopback; one owner at a time."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.core.contract import ParameterBounds, ParameterRangeError, PhysicalLayer
from ffzero_lab.core.errors import UserError
from ffzero_lab.core.network import Network
from ffzero_lab.live.remote import (
    RemoteNetwork,
    RigServer,
    make_keys,
    needs_keys,
)

ROOT = Path(__file__).resolve().parents[2]
QUICK = str(ROOT / "protocols" / "quickstart.yaml")
SERVE_SETS = ["--set", "device.settings.init=random"]
TRAIN_SETS = ["--set", "train.epochs=1", "--set", "data.train_limit=128", "--set", "data.test_limit=64", "-q"]
runner = CliRunner()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_server(address: str, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ffzero_lab", "serve", QUICK, "--bind", address, *SERVE_SETS, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()  # "serving ..." once it is bound
    assert "serving" in line, line + (proc.stderr.read() if proc.poll() is not None else "")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_train_on_a_served_rig_from_another_process(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    server = start_server(address)
    try:
        result = runner.invoke(
            app, ["run", QUICK, "--rig", address, *TRAIN_SETS, "--json", "--runs-dir", str(tmp_path)]
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.splitlines()[-1])
        assert summary["evaluations"] > 0 and len(summary["layer_accuracy"]) == 2
        listed = json.loads(runner.invoke(app, ["runs", "list", "--json", "--runs-dir", str(tmp_path)]).stdout)
        assert listed["runs"][0]["kind"] == "run" and listed["runs"][0]["status"] == "complete"
        # the rig was released at the end: a second run can take it
        again = runner.invoke(app, ["run", QUICK, "--rig", address, *TRAIN_SETS, "--runs-dir", str(tmp_path)])
        assert again.exit_code == 0, again.output
    finally:
        stop(server)


def test_keys_required_off_loopback(tmp_path: Path) -> None:
    assert not needs_keys("tcp://127.0.0.1:5") and not needs_keys("tcp://[::1]:5")
    assert not needs_keys("tcp://127.0.0.2:5")  # 127.0.0.0/8 is loopback
    assert needs_keys("tcp://0.0.0.0:5") and needs_keys("tcp://*:5") and needs_keys("tcp://localhost:5")
    result = runner.invoke(app, ["serve", QUICK, "--bind", "tcp://0.0.0.0:5999"])
    assert result.exit_code == 2 and "needs CurveZMQ keys" in result.stderr


def test_unauthenticated_client_cannot_drive_and_second_client_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    port = free_port()
    server = start_server(f"tcp://localhost:{port}", "--keys", str(keys))  # a host name: keys required
    address = f"tcp://127.0.0.1:{port}"
    try:
        # no keys: the server never answers, the client says so and touches nothing
        with pytest.raises(UserError, match="did not answer"):
            RemoteNetwork(address, None, timeout_s=2.0)
        # wrong keys: a key pair the server does not know
        stranger = tmp_path / "stranger"
        make_keys(stranger)
        (stranger / "server.key").write_bytes((keys / "server.key").read_bytes())
        with pytest.raises(UserError, match="did not answer"):
            RemoteNetwork(address, stranger, timeout_s=2.0)
        owner = RemoteNetwork(address, keys, timeout_s=10.0)
        try:
            theta = owner.layers[0].get_parameters()
            owner.layers[0].set_parameters(theta + 0.1)
            with pytest.raises(UserError, match="in use by client"):
                RemoteNetwork(address, keys, timeout_s=10.0)
            cli = runner.invoke(app, ["run", QUICK, "--rig", address, "--keys", str(keys), *TRAIN_SETS,
                                      "--runs-dir", str(tmp_path / "runs")])
            assert cli.exit_code == 2 and "in use by client" in cli.stderr and "Traceback" not in cli.output
        finally:
            owner.safe_state()
        second = RemoteNetwork(address, keys, timeout_s=10.0)  # free again after the release
        second.safe_state()
    finally:
        stop(server)


class CountingLayer(PhysicalLayer):
    """A tiny layer that counts how often it was made safe."""

    in_features = ports = out_features = 2

    def __init__(self) -> None:
        self.theta = np.zeros(2)
        self.safe_calls = 0

    @property
    def bounds(self) -> ParameterBounds:
        return ParameterBounds(np.full(2, -1.0), np.full(2, 1.0), np.zeros(2, bool), ("v0", "v1"))

    def get_parameters(self):
        return self.theta.copy()

    def set_parameters(self, values):
        self.theta = self.bounds.apply(values)

    def propagate(self, inputs, settings):
        out = np.asarray(inputs)[None] * np.atleast_2d(settings)[:, None, :]
        return out, out

    def safe_state(self) -> None:
        self.safe_calls += 1
        self.theta = np.zeros(2)


def test_lost_client_leaves_the_rig_safe_and_free() -> None:
    layer = CountingLayer()
    address = f"tcp://127.0.0.1:{free_port()}"
    server = RigServer(Network([layer], []), address, lease_s=0.5)
    thread = threading.Thread(target=server.serve, kwargs={"stop_after_s": 6.0})
    thread.start()
    try:
        lost = RemoteNetwork(address, timeout_s=5.0)
        lost.layers[0].set_parameters([0.5, -0.5])
        assert layer.theta.tolist() == [0.5, -0.5]
        with pytest.raises(ParameterRangeError, match="outside"):  # checked before it leaves the client
            lost.layers[0].set_parameters([2.0, 0.0])
        lost.client.close()  # the client vanishes without releasing
        time.sleep(1.0)
        assert layer.safe_calls == 1 and layer.theta.tolist() == [0.0, 0.0]
        other = RemoteNetwork(address, timeout_s=5.0)
        taps = other.layers[0].evaluate(np.ones((3, 2)), np.array([[0.1, 0.2]]))
        assert taps.shape == (1, 3, 2)
        other.safe_state()
        assert layer.safe_calls == 2
    finally:
        thread.join()
        server.close()


def test_resuming_a_rig_run_needs_the_rig(tmp_path: Path) -> None:
    """A killed rig run (its row as a killed process leaves it) does not resume on a simulator."""
    code = ("import os, sys; from pathlib import Path\n"
            "from ffzero_lab.store.runstore import StoreSink\n"
            f"s = StoreSink(Path({str(tmp_path)!r}), 'run', None, None, '0')\n"
            "s('start', {'run_uid': 'abc', 'time': 1.0, 'protocol': {'name': 'x', 'method': 'ff-dd'}})\n"
            "s.close(); os._exit(0)\n")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    result = runner.invoke(app, ["resume", "1", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--rig" in result.stderr


def test_a_rig_run_records_what_it_ran_on(tmp_path: Path) -> None:
    import sqlite3

    address = f"tcp://127.0.0.1:{free_port()}"
    server = start_server(address)
    try:
        result = runner.invoke(app, ["run", QUICK, "--rig", address, *TRAIN_SETS, "--runs-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
    finally:
        stop(server)
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        device = json.loads(db.execute("SELECT device_json FROM runs").fetchone()[0])
    assert device["rig"] == address and device["served"]["driver"] == "neurophox-mesh"


def test_bad_rig_address_or_missing_key_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", QUICK, "--rig", "bogus", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "cannot connect to bogus" in result.stderr and "Traceback" not in result.output
    keys = tmp_path / "keys"
    make_keys(keys)
    (keys / "server.key").unlink()
    result = runner.invoke(app, ["run", QUICK, "--rig", "tcp://127.0.0.1:5", "--keys", str(keys),
                                 "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "server.key" in result.stderr and "Traceback" not in result.output

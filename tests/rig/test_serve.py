"""``ffzero-lab serve INSTRUMENTS.yaml``: the rig of an instruments file served over ZMQ, trained
from ``run --rig`` in another process's client."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from drivers.emulated.rig import EmulatedRig
from ffzero_lab.cli.app import app
from ffzero_lab.run.session import is_instruments_file
from tests.live.test_remote import free_port, stop

from .conftest import ROOT, corners_data, live_instruments_file
from .test_run import protocol_file


def test_an_instruments_file_is_told_from_a_protocol(tmp_path: Path) -> None:
    assert is_instruments_file(ROOT / "instruments.yaml")
    assert not is_instruments_file(ROOT / "protocols" / "rig_4mode.yaml")
    assert not is_instruments_file(tmp_path / "missing.yaml")


def test_serve_an_instruments_file_and_train_on_it_with_run_rig(emulated: EmulatedRig, tmp_path: Path) -> None:
    instruments = live_instruments_file(emulated, tmp_path)
    address = f"tcp://127.0.0.1:{free_port()}"
    server = subprocess.Popen([sys.executable, "-m", "ffzero_lab", "serve", str(instruments), "--bind", address],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = server.stderr.readline()  # type: ignore[union-attr]
        assert f"serving 1 layers of the rig of {instruments}" in line, line
        result = CliRunner().invoke(app, ["run", str(protocol_file(tmp_path, epochs=1)), "--rig", address, "--json",
                                          "--quiet", "--runs-dir", str(tmp_path / "runs"),
                                          "--data-dir", str(corners_data(tmp_path))])
        assert result.exit_code == 0, result.output
        with closing(sqlite3.connect(tmp_path / "runs" / "runs.sqlite")) as db:
            device = json.loads(db.execute("SELECT device_json FROM runs").fetchone()[0])
        assert device["rig"] == address and device["served"]["instruments"] == str(instruments)
    finally:
        stop(server)
        server.stderr.close()  # type: ignore[union-attr]
    assert server.returncode == 0
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts, 0.0)  # the server left the rig safe

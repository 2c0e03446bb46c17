"""Signals during ``run --instruments``: the real CLI in a subprocess against the emulated rig,
stopped by SIGINT, SIGTERM or SIGHUP at a random moment of its training; the heaters are read
back from the emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.emulated.rig import EmulatedRig
from ffzero_lab.store.runstore import RunStore

from .conftest import ROOT, corners_data, live_instruments_file
from .test_run import protocol_file


def _trial(emulated: EmulatedRig, folder: Path, sig: signal.Signals, rng: np.random.Generator) -> None:
    """One run stopped by ``sig`` a random time after its first heater write."""
    folder.mkdir()
    heaters = emulated.heaters["heaters"]
    heaters.volts[:] = 0.0
    instruments = live_instruments_file(emulated, folder)
    protocol = protocol_file(folder, epochs=1000)
    command = [sys.executable, "-m", "ffzero_lab", "run", str(protocol), "--instruments", str(instruments),
               "--runs-dir", str(folder / "runs"), "--data-dir", str(corners_data(folder)), "--quiet"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while not np.any(heaters.volts != 0.0):  # training has started writing the heaters
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never wrote a heater"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.4))
        assert np.any(heaters.volts != 0.0)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr, stderr
    assert f"interrupted ({sig.name})" in stderr, stderr
    np.testing.assert_array_equal(heaters.volts, 0.0)  # every heater at its safe value
    store = RunStore(folder / "runs")
    try:
        [run] = store.list_runs()
        assert run.status == "failed"
        assert f"stopped by {sig.name}" in store.run_row(run.id)["reason"]
    finally:
        store.close()


@pytest.mark.parametrize(("sig", "trials"), [(signal.SIGINT, 2), (signal.SIGTERM, 2), (signal.SIGHUP, 2)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_mid_run_leaves_the_heaters_safe(emulated: EmulatedRig, tmp_path: Path, sig: signal.Signals,
                                                  trials: int) -> None:
    rng = np.random.default_rng(int(sig))
    for trial in range(trials):
        _trial(emulated, tmp_path / f"trial{trial}", sig, rng)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "trials"), [(signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGHUP, 10)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_the_safe_state_holds_over_many_signal_trials(emulated: EmulatedRig, tmp_path: Path, sig: signal.Signals,
                                                      trials: int) -> None:
    rng = np.random.default_rng(100 + int(sig))
    for trial in range(trials):
        _trial(emulated, tmp_path / f"trial{trial}", sig, rng)

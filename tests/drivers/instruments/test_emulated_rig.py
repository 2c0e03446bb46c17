"""The emulated rig: real drivers over pyvisa-py sockets to emulated instruments on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvisa
import yaml
from typer.testing import CliRunner

from drivers.emulated.qontrol import QontrolEmulator
from drivers.emulated.rig import EmulatedRig
from drivers.emulated.server import Fault
from drivers.instruments.qontrol import QontrolError
from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.rig import InstrumentError, open_instrument

ROOT = Path(__file__).resolve().parents[3]


def rig_file(tmp_path: Path, **changes: Any) -> Path:
    """The repository's emulated rig file, with ``changes``, next to a copy of its instruments file."""
    doc = yaml.safe_load((ROOT / "rig.emulated.yaml").read_text())
    doc["chip"]["noise"] = 0.0
    doc.update(changes)
    (tmp_path / "instruments.emulated.yaml").write_text((ROOT / "instruments.emulated.yaml").read_text())
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def emulated(tmp_path: Path) -> Iterator[EmulatedRig]:
    with EmulatedRig.from_file(rig_file(tmp_path), any_port=True) as rig:
        yield rig


@pytest.fixture
def rm() -> Iterator[pyvisa.ResourceManager]:
    manager = pyvisa.ResourceManager("@py")
    yield manager
    manager.close()


def test_drivers_identify_the_emulated_instruments(emulated: EmulatedRig, rm: pyvisa.ResourceManager) -> None:
    config = emulated.instruments_config()
    heaters, meter = (open_instrument(config, name, rm) for name in ("heaters", "meter"))
    assert (heaters.identify().model, heaters.identify().channels) == ("Q8iv", 24)
    assert (meter.identify().model, meter.identify().channels) == ("N7744A", 4)


def test_heater_writes_reach_the_detectors(emulated: EmulatedRig, rm: pyvisa.ResourceManager) -> None:
    config = emulated.instruments_config()
    heaters, meter = open_instrument(config, "heaters", rm), open_instrument(config, "meter", rm)
    heaters.set_voltages_V(np.arange(20), np.full(20, 2.0))
    before = meter.fetch_power_W()
    np.testing.assert_allclose(before, emulated.chip.output_powers_W(0, {"heaters": emulated.heaters["heaters"].volts}),
                               rtol=1e-6)
    assert before.sum() <= 1e-3 * (1 + 1e-6)  # lossless mesh: at most the input power
    heaters.set_voltage_V(4, 3.0)  # theta[1,0]
    after = meter.fetch_power_W()
    assert not np.allclose(before, after)
    assert after.sum() == pytest.approx(before.sum(), rel=1e-5)  # an MZI inside the mesh only redistributes
    np.testing.assert_allclose(
        meter.log_power_W(5, averaging_time_s=1e-4), np.repeat(after[:, None], 5, axis=1), rtol=1e-6
    )
    np.testing.assert_allclose(heaters.read_all_voltages_V()[:21], [2.0] * 4 + [3.0] + [2.0] * 15 + [0.0])


def test_latency_and_injected_faults(tmp_path: Path, rm: pyvisa.ResourceManager) -> None:
    path = rig_file(
        tmp_path,
        instruments={"heaters": {"latency_s": 0.05, "faults": [{"match": "V3=*", "reply": "E15:03", "count": 1}]}},
    )
    with EmulatedRig.from_file(path, any_port=True) as emulated:
        heaters = open_instrument(emulated.instruments_config(), "heaters", rm)
        start = time.perf_counter()
        heaters.identify()  # four queries
        assert time.perf_counter() - start >= 4 * 0.05
        heaters.sync_state()
        with pytest.raises(QontrolError, match=r"channel 3: error E15 \(communication error\) \(command 'V3=1.0000'\)"):
            heaters.set_voltage_V(3, 1.0)
        heaters.set_voltage_V(3, 1.0)  # the fault hit once
        emulated.inject("heaters", Fault("id?", silent=True))
        heaters.resource.timeout = 200
        with pytest.raises(
            InstrumentError, match=r"'heaters': no reply from TCPIP0::127.0.0.1::\d+::SOCKET within 200 ms"
        ):
            heaters.identify()


def test_the_emulated_qontrol_refuses_like_the_real_one() -> None:
    q = QontrolEmulator(np.full(8, 500.0), buffer_chars=40)
    assert q.handle("VMAX2=5.0") == [b"OK\n"]
    assert q.handle("V2=5.5") == [b"E01:02\n"]
    assert q.handle("V2=-1") == [b"E01:02\n"]
    assert q.handle("I2=30") == [b"E01:02\n"]  # 30 mA through 500 ohm is 15 V
    assert q.handle("IMAX1=5.0") == [b"OK\n"] and q.handle("V1=3.0") == [b"E02:01\n"]  # 6 mA
    assert q.handle("VVEC0=" + ",".join(["1.0000"] * 8)) == [b"E14:00\n"]
    assert q.handle("VVEC6=1,2,3") == [b"E12:06\n"] and q.handle("V9?") == [b"E12:09\n"]
    assert q.handle("X1=2") == [b"E10:00\n"]
    assert q.handle("VVEC3=1,2") == [b"OK\n"] and q.handle("V4?") == [b"2.0000\n"] and q.handle("I4?") == [b"4.0000\n"]
    np.testing.assert_array_equal(q.volts, [0, 0, 0, 1, 2, 0, 0, 0])


def test_check_command_against_the_emulated_rig(emulated: EmulatedRig, tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(emulated.instruments_config().model_dump(mode="json", exclude_none=True)))
    result = CliRunner().invoke(app, ["instruments", "check", "--instruments", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "Q8iv-0001" in result.stdout and "20 of 24" in result.stdout and "4 of 4" in result.stdout


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"latency": 1}, "rig.yaml: latency: unknown field"),
        ({"instruments": {"laser": {}}}, "rig.yaml: instruments: not in instruments.emulated.yaml: laser"),
        ({"chip": {"noise": -1}}, "rig.yaml: chip.noise: Input should be greater than or equal to 0"),
    ],
)
def test_emulated_rig_file_errors(tmp_path: Path, changes: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        EmulatedRig.from_file(rig_file(tmp_path, **changes))
    assert expected in str(info.value)


def test_an_instrument_not_on_a_local_socket_is_refused(tmp_path: Path) -> None:
    path = rig_file(tmp_path)
    instruments = tmp_path / "instruments.emulated.yaml"
    instruments.write_text(
        instruments.read_text().replace("TCPIP0::127.0.0.1::50002::SOCKET", "TCPIP0::10.0.0.5::inst0::INSTR")
    )
    with pytest.raises(
        ConfigError, match=r"instruments.meter.resource: the emulated rig serves TCPIP::127.0.0.1::<port>::SOCKET"
    ):
        EmulatedRig.from_file(path)


def test_emulate_command_serves_until_interrupted(tmp_path: Path, rm: pyvisa.ResourceManager) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ffzero_lab", "instruments", "emulate", str(rig_file(tmp_path)), "--any-port"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        lines = []
        while (line := proc.stdout.readline().strip()) != "ready":  # type: ignore[union-attr]
            assert line, proc.stderr.read()  # type: ignore[union-attr]
            lines.append(line)
        resources = dict(line.split() for line in lines)
        assert set(resources) == {"heaters", "meter"}
        meter = rm.open_resource(resources["meter"], read_termination="\n", write_termination="\n", timeout=2000)
        assert meter.query("*IDN?").startswith("Keysight Technologies,N7744A")
        meter.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
